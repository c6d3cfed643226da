// The normalization row-kernel contract: the inner loops of ops/norm.cc over the C contiguous channels of
// pixel rows, and of ops/short_rows_norm.cc over rows that are each their own statistics group (LayerNorm);
// no allocation, no threads, no shape logic (the drivers split rows and blocks, and merge the sums).
// "rows" below are `pixels` rows of `channels` values, `channels` apart.
//
//   block_sums     s1[c] = sum_p (x[p, c] - shift[c]); s2[c] = sum_p (x[p, c] - shift[c])^2
//   normalize_rows y[p, c] = ((x[p, c] - center[c]) - center_low[c]) * scale[c] + offset[c]
//   gradient_sums  sum_dy[c] = sum_p dy[p, c]; sum_dy_centered[c] = sum_p dy[p, c] * (x[p, c] - center[c])
//   gradient_rows  dx[p, c] = dy[p, c] * dy_scale[c] + ((x[p, c] - center[c]) - center_low[c]) * x_scale[c]
//                           + offset[c]
//
// The sums are in double; normalize_rows and gradient_rows compute in T (center + center_low is the mean in two parts).
//
// Sums run over the pixels in order, per channel (a sum of no pixels is 0).
//
// Short rows: `rows` rows of `values` values (values >= 1), contiguous, each row normalised by its own
// statistics while it is in L1. gamma and beta are never null (the driver passes ones and zeros).
//
//   short_rows_forward   mean[r], var = shifted sums in double as block_sums (shift: the row's first value);
//                        inv_std[r] = 1 / sqrt(var + eps);
//                        y[r, k] = ((x[r, k] - mean_hi) - mean_lo) * T(inv_std[r]) * gamma[k] + beta[k] in T
//                        (mean_hi + mean_lo: mean[r] as two T values)
//   short_rows_backward  per row, one pass for both sums (double): a = sum_k dy*gamma, b = sum_k dy*gamma*xhat,
//                        with xhat = (x - mean[r]) * inv_std[r], gamma_wide = gamma in double; then in T
//                        dx[r, k] = inv_std * (dy*gamma - a / values - xhat * b / values);
//                        and over the rows, in order: sum_dy[k] += dy, sum_dy_xhat[k] += dy * xhat (double)
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit {

template <class T>
struct NormUkernel {
  const char* name;  // dtype-norm-tile-isa; tile: 1 pixel x the doubles one vector holds (ref: 1x1, per value)
  Isa isa;
  void (*block_sums)(const T* x, std::int64_t pixels, std::int64_t channels, const T* shift, double* s1,
                     double* s2) noexcept;
  void (*normalize_rows)(const T* x, std::int64_t pixels, std::int64_t channels, const T* center,
                         const T* center_low, const T* scale, const T* offset, T* y) noexcept;
  void (*gradient_sums)(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                        double* sum_dy, double* sum_dy_centered) noexcept;
  void (*gradient_rows)(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const T* dy_scale,
                        const T* x_scale, const T* offset, const T* center, const T* center_low, T* dx) noexcept;
  void (*short_rows_forward)(const T* x, std::int64_t rows, std::int64_t values, double eps, const T* gamma,
                             const T* beta, T* y, double* mean, double* inv_std) noexcept;
  void (*short_rows_backward)(const T* dy, const T* x, std::int64_t rows, std::int64_t values, const double* mean,
                              const double* inv_std, const T* gamma, const double* gamma_wide, T* dx,
                              double* sum_dy, double* sum_dy_xhat) noexcept;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const NormUkernel<float> f32_norm_1x1_ref;
extern const NormUkernel<double> f64_norm_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const NormUkernel<float> f32_norm_1x4_avx2;
extern const NormUkernel<double> f64_norm_1x4_avx2;
#endif

}  // namespace convkit
