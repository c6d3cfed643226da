// Local response normalization drivers (formulas in lrn.h). Rows are split over the threads in
// contiguous shares; each row is computed by one thread from its own values only, so results do not
// depend on the thread count. Window sums loop over the window's offsets outside and the channels inside,
// so that the inner loop is a contiguous, vectorisable pass over a row.
#include "ops/lrn.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// out[c] = sum of in[c + offset] for offset in [-before, after] and c + offset in [0, channels).
void window_sums(const double* in, int64_t channels, int64_t before, int64_t after, double* out) {
  std::fill(out, out + channels, 0.0);
  // Offsets beyond +-(channels - 1) reach no channel: a window wider than the row (size up to 2**63 - 1
  // is valid) costs no more than one that covers it.
  const int64_t lowest = -std::min(before, channels - 1), highest = std::min(after, channels - 1);
  for (int64_t offset = lowest; offset <= highest; ++offset) {
    const int64_t first = std::max<int64_t>(0, -offset), end = std::min(channels, channels - offset);
    for (int64_t c = first; c < end; ++c) out[c] += in[c + offset];
  }
}

// s[c] = k + alpha / n * (sum of x^2 over the window of c), from the row x; squares is scratch.
template <class T>
void row_scales(const T* x, int64_t channels, const LrnOptions& o, double* squares, double* s) {
  for (int64_t c = 0; c < channels; ++c) squares[c] = static_cast<double>(x[c]) * static_cast<double>(x[c]);
  window_sums(squares, channels, o.size / 2, (o.size - 1) / 2, s);
  const double per_element = o.alpha / static_cast<double>(o.size);
  for (int64_t c = 0; c < channels; ++c) s[c] = o.k + per_element * s[c];
}

}  // namespace

void check_lrn(int64_t rows, int64_t channels, const LrnOptions& o) {
  if (rows < 0 || channels < 1 || o.size < 1) {
    throw std::invalid_argument("lrn: bad sizes (rows " + std::to_string(rows) + ", channels " +
                                std::to_string(channels) + ", size " + std::to_string(o.size) + ")");
  }
}

template <class T>
void lrn_forward(int64_t rows, int64_t channels, const LrnOptions& o, const T* x, T* y) {
  check_lrn(rows, channels, o);
  for_each_share(rows, channels * std::min(o.size, 2 * channels), [&](int64_t begin, int64_t end) {
    std::vector<double> scratch(static_cast<std::size_t>(2 * channels));
    double* squares = scratch.data();
    double* s = squares + channels;
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * channels;
      T* yr = y + r * channels;
      row_scales(xr, channels, o, squares, s);
      for (int64_t c = 0; c < channels; ++c) yr[c] = static_cast<T>(static_cast<double>(xr[c]) * std::pow(s[c], -o.beta));
    }
  });
}

template <class T>
void lrn_backward(int64_t rows, int64_t channels, const LrnOptions& o, const T* dy, const T* x, T* dx) {
  check_lrn(rows, channels, o);
  const double cross = 2.0 * o.alpha * o.beta / static_cast<double>(o.size);
  for_each_share(rows, channels * std::min(o.size, 2 * channels), [&](int64_t begin, int64_t end) {
    std::vector<double> scratch(static_cast<std::size_t>(3 * channels));
    double* work = scratch.data();  // squares, then dy * y / s
    double* s = work + channels;      // s, then s^-beta
    double* received = s + channels;  // sum of dy * y / s over the windows that contain a channel
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * channels;
      const T* dyr = dy + r * channels;
      T* dxr = dx + r * channels;
      row_scales(xr, channels, o, work, s);
      for (int64_t c = 0; c < channels; ++c) {
        const double power = std::pow(s[c], -o.beta);
        work[c] = static_cast<double>(dyr[c]) * static_cast<double>(xr[c]) * power / s[c];
        s[c] = power;
      }
      // Channel j lies in window(c) for c in [j - (n-1)/2, j + n/2]: the forward window mirrored.
      window_sums(work, channels, (o.size - 1) / 2, o.size / 2, received);
      for (int64_t c = 0; c < channels; ++c) {
        dxr[c] = static_cast<T>(static_cast<double>(dyr[c]) * s[c] -
                                cross * static_cast<double>(xr[c]) * received[c]);
      }
    }
  });
}

#define CONVKIT_INSTANTIATE_LRN(T)                                                                           \
  template void lrn_forward<T>(int64_t, int64_t, const LrnOptions&, const T*, T*);                           \
  template void lrn_backward<T>(int64_t, int64_t, const LrnOptions&, const T*, const T*, T*);
CONVKIT_INSTANTIATE_LRN(float)
CONVKIT_INSTANTIATE_LRN(double)
#undef CONVKIT_INSTANTIATE_LRN

}  // namespace convkit
