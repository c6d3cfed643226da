// Local response normalization across channels (AlexNet's "NORM1/NORM2"), PyTorch's formula.
//
// Shape legend: x, y, dy, dx are (R, C), contiguous: R = N * spatial pixel rows of C channels. Each row is
// independent. With n = size, the window of channel c is [c - n/2, c + (n-1)/2] (integer division),
// channels outside [0, C) counting as zero:
//
//   forward   s[c] = k + alpha / n * sum_{j in window(c)} x[j]^2        y[c] = x[c] * s[c]^-beta
//   backward  dx[j] = dy[j] * s[j]^-beta
//                     - 2 * alpha * beta / n * x[j] * sum_{c : j in window(c)} dy[c] * y[c] / s[c]
//
// Computed in double per row and rounded once; any thread count gives the same bits.
#pragma once
#include <cstdint>

namespace convkit {

struct LrnOptions {
  std::int64_t size;
  double alpha, beta, k;
};

// Throws std::invalid_argument unless rows >= 0, channels >= 1 and size >= 1.
void check_lrn(std::int64_t rows, std::int64_t channels, const LrnOptions& o);

template <class T>
void lrn_forward(std::int64_t rows, std::int64_t channels, const LrnOptions& o, const T* x, T* y);

// dx (overwritten) from dy and the forward's input x (the scales are recomputed, not saved).
template <class T>
void lrn_backward(std::int64_t rows, std::int64_t channels, const LrnOptions& o, const T* dy, const T* x, T* dx);

}  // namespace convkit
