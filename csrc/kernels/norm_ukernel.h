// The normalization row-kernel contract: the inner loops of ops/norm.cc over the C contiguous channels of
// pixel rows, arithmetic in double, no allocation, no threads, no shape logic (the driver splits rows and
// blocks, and merges the sums). "rows" below are `pixels` rows of `channels` values, `channels` apart.
//
//   block_sums     s1[c] = sum_p (x[p, c] - shift[c]); s2[c] = sum_p (x[p, c] - shift[c])^2
//   normalize_row  y[c] = (x[c] - center[c]) * scale[c] + offset[c]
//   gradient_sums  sum_dy[c] = sum_p dy[p, c]; sum_dy_centered[c] = sum_p dy[p, c] * (x[p, c] - center[c])
//   gradient_row   dx[c] = dy[c] * dy_scale[c] + (x[c] - center[c]) * x_scale[c] + offset[c]
//
// Sums run over the pixels in order, per channel (a sum of no pixels is 0).
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
  void (*normalize_row)(const T* x, std::int64_t channels, const double* center, const double* scale,
                        const double* offset, T* y) noexcept;
  void (*gradient_sums)(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                        double* sum_dy, double* sum_dy_centered) noexcept;
  void (*gradient_row)(const T* dy, const T* x, std::int64_t channels, const double* dy_scale,
                       const double* x_scale, const double* offset, const double* center, T* dx) noexcept;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const NormUkernel<float> f32_norm_1x1_ref;
extern const NormUkernel<double> f64_norm_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const NormUkernel<float> f32_norm_1x4_avx2;
extern const NormUkernel<double> f64_norm_1x4_avx2;
#endif

}  // namespace convkit
