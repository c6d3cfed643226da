// Normalization of rows that are each their own statistics group: LayerNorm over the last axes. Designed
// for many short rows (ConvNeXt's LayerNorm over the C channels of each pixel), where the general driver
// (ops/norm.h) pays a task, kernel calls and partial sums per row: here a kernel call takes a run of rows,
// and each row's statistics and normalization (or both backward sums and dx) are done while the row is in
// L1. It also beats the general driver 15-25x on rows of 1K to 64K values, so LayerNorm always runs here.
//
// Shape legend: x, y, dy, dx are (R, K), contiguous: R rows of K values; mean, inv_std are (R,); gamma,
// beta, dgamma, dbeta are (K,).
//
//   forward   mean[r], var[r] = biased variance of row r, in double; inv_std[r] = 1 / sqrt(var[r] + eps)
//             y[r, k] = (x[r, k] - mean[r]) * inv_std[r] * gamma[k] + beta[k]
//   backward  dbeta[k] = sum_r dy[r, k]        dgamma[k] = sum_r dy[r, k] * xhat[r, k]
//             dx[r, k] = inv_std[r] * (dy*gamma - mean_k(dy*gamma) - xhat * mean_k(dy*gamma*xhat))
//
// Every result is independent of the thread count, bit for bit (see short_rows_norm.cc).
#pragma once
#include <cstdint>

namespace convkit {

// Throws std::invalid_argument unless rows >= 0 and values >= 1.
void check_short_rows(std::int64_t rows, std::int64_t values);

// y, mean and inv_std are overwritten. gamma and beta: (K,) or null (then 1 and 0). eps >= 0.
template <class T>
void short_rows_norm_forward(std::int64_t rows, std::int64_t values, const T* x, double eps, const T* gamma,
                             const T* beta, T* y, double* mean, double* inv_std);

// dx, and dgamma and dbeta unless null, are overwritten; mean and inv_std are the forward's.
template <class T>
void short_rows_norm_backward(std::int64_t rows, std::int64_t values, const T* dy, const T* x, const double* mean,
                              const double* inv_std, const T* gamma, T* dx, T* dgamma, T* dbeta);

}  // namespace convkit
