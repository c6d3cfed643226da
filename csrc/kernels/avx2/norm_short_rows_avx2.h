// AVX2 short-row normalization kernels (contract in kernels/norm_ukernel.h), for float and double: the loops
// of kernels/norm_short_rows.h with intrinsics. A row's sums run in double, 16 values per step into four
// independent accumulators (a single chain would wait on the add latency). Rows go in batches of four: the
// four rows' sums first, then their statistics (or backward coefficients) together in the lanes of one
// vector, then their elementwise passes in T. On rows of 64 values a row's scalar finish (a division, a
// square root, a division) would otherwise be a latency chain between its two passes longer than either; in
// a batch, the four rows' sums are independent work that overlaps it. Lanes never mix, so a row's results do
// not depend on its batch (nor on the thread count). Values that do not fill a vector run scalar.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/avx2/norm_columns_avx2.h"
#include "kernels/avx2/simd_avx2.h"
#include "kernels/norm_short_rows.h"

namespace convkit::avx2::short_rows {

using convkit::short_rows::split;

constexpr int kBatch = 4;  // rows per batch: one vector of doubles holds a value per row

template <class T>
using Vec = std::conditional_t<std::is_same_v<T, float>, F32x8, F64x4>;

inline __m256 splat(float v) { return _mm256_set1_ps(v); }
inline __m256d splat(double v) { return _mm256_set1_pd(v); }
inline __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
inline __m256d sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }

// Lane j of the result: the sum of the lanes of v[j], (v[j][0] + v[j][1]) + (v[j][2] + v[j][3]).
inline __m256d lane_sums(const __m256d* v) {
  const __m256d h01 = _mm256_hadd_pd(v[0], v[1]);  // v0[0]+v0[1], v1[0]+v1[1], v0[2]+v0[3], v1[2]+v1[3]
  const __m256d h23 = _mm256_hadd_pd(v[2], v[3]);
  return _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
}

inline __m256d sum_of(const __m256d* a) { return _mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])); }

// The loops below take 16 values per step into four accumulators, then 4 values at a time into the first,
// and leave fewer than 4 values to scalar code. (A helper taking the step as a lambda kept the accumulators
// in memory, reloading them and the lambda's captures at every step: 3x slower.)

// A row's sums of d = x - shift and d * d, as four partial sums each (the values left over by the vectors
// added to lane 0).
template <class T>
inline __attribute__((always_inline)) void add_shifted(const T* at, __m256d shift, __m256d& s1, __m256d& s2) {
  const __m256d d = _mm256_sub_pd(load_as_double(at), shift);
  s1 = _mm256_add_pd(s1, d);
  s2 = _mm256_fmadd_pd(d, d, s2);
}

template <class T>
void row_sums(const T* row, std::int64_t values, double shift, __m256d* s1, __m256d* s2) {
  const __m256d k = _mm256_set1_pd(shift);
  __m256d a1[4], a2[4];
  for (int v = 0; v < 4; ++v) a1[v] = _mm256_setzero_pd(), a2[v] = _mm256_setzero_pd();
  std::int64_t i = 0;
  for (; i + 16 <= values; i += 16) {
    for (int v = 0; v < 4; ++v) add_shifted(row + i + 4 * v, k, a1[v], a2[v]);
  }
  for (; i + 4 <= values; i += 4) add_shifted(row + i, k, a1[0], a2[0]);
  double t1 = 0.0, t2 = 0.0;
  for (; i < values; ++i) {
    const double d = static_cast<double>(row[i]) - shift;
    t1 += d;
    t2 += d * d;
  }
  *s1 = _mm256_add_pd(sum_of(a1), _mm256_setr_pd(t1, 0.0, 0.0, 0.0));
  *s2 = _mm256_add_pd(sum_of(a2), _mm256_setr_pd(t2, 0.0, 0.0, 0.0));
}

template <class T>
void normalize_row(const T* row, std::int64_t values, double mean, double inv_std, const T* gamma, const T* beta,
                   T* out) {
  using S = Vec<T>;
  T center, center_low;
  split<Isa::avx2_fma>(mean, &center, &center_low);
  const T scale = static_cast<T>(inv_std);
  const typename S::V vcenter = splat(center), vcenter_low = splat(center_low), vscale = splat(scale);
  std::int64_t k = 0;
  for (; k + S::lanes <= values; k += S::lanes) {
    const typename S::V centered = sub(sub(S::load(row + k), vcenter), vcenter_low);
    S::store(out + k, S::fmadd(S::mul(centered, vscale), S::load(gamma + k), S::load(beta + k)));
  }
  for (; k < values; ++k) out[k] = ((row[k] - center) - center_low) * scale * gamma[k] + beta[k];
}

template <class T>
void forward(const T* x, std::int64_t rows, std::int64_t values, double eps, const T* gamma, const T* beta, T* y,
             double* mean, double* inv_std) noexcept {
  const __m256d n = _mm256_set1_pd(static_cast<double>(values)), zero = _mm256_setzero_pd();
  for (std::int64_t first = 0; first < rows; first += kBatch) {
    const int batch = static_cast<int>(rows - first < kBatch ? rows - first : kBatch);
    // Rows past the end of a short batch keep zero sums; their lanes are computed and dropped.
    alignas(32) double shift[kBatch] = {};
    __m256d s1[kBatch], s2[kBatch];
    for (int j = 0; j < kBatch; ++j) {
      s1[j] = zero, s2[j] = zero;
      if (j >= batch) continue;
      const T* row = x + (first + j) * values;
      shift[j] = static_cast<double>(row[0]);
      row_sums(row, values, shift[j], s1 + j, s2 + j);
    }
    // mean = shift + s1 / n, var = max(s2 - s1 * s1 / n, 0) / n (the clamp against rounding).
    const __m256d sum1 = lane_sums(s1), sum2 = lane_sums(s2), shifted_mean = _mm256_div_pd(sum1, n);
    const __m256d var = _mm256_div_pd(_mm256_max_pd(_mm256_fnmadd_pd(sum1, shifted_mean, sum2), zero), n);
    alignas(32) double batch_mean[kBatch], batch_inv_std[kBatch];
    _mm256_store_pd(batch_mean, _mm256_add_pd(_mm256_load_pd(shift), shifted_mean));
    _mm256_store_pd(batch_inv_std,
                    _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_sqrt_pd(_mm256_add_pd(var, _mm256_set1_pd(eps)))));
    for (int j = 0; j < batch; ++j) {
      const std::int64_t r = first + j;
      mean[r] = batch_mean[j], inv_std[r] = batch_inv_std[j];
      normalize_row(x + r * values, values, batch_mean[j], batch_inv_std[j], gamma, beta, y + r * values);
    }
  }
}

// A row's sums of dy * gamma and dy * gamma * xhat as four partial sums each (the values left over by the
// vectors added to lane 0), and dy and dy * xhat added to the column sums.
template <class T>
inline __attribute__((always_inline)) void add_gradient_terms(const T* dy, const T* x, const double* gamma_wide,
                                                              __m256d mean, __m256d inv_std, double* sum_dy,
                                                              double* sum_dy_xhat, __m256d& a, __m256d& b) {
  const __m256d d = load_as_double(dy);
  const __m256d xhat = _mm256_mul_pd(_mm256_sub_pd(load_as_double(x), mean), inv_std);
  const __m256d dg = _mm256_mul_pd(d, _mm256_loadu_pd(gamma_wide));
  a = _mm256_add_pd(a, dg);
  b = _mm256_fmadd_pd(dg, xhat, b);
  _mm256_storeu_pd(sum_dy, _mm256_add_pd(_mm256_loadu_pd(sum_dy), d));
  _mm256_storeu_pd(sum_dy_xhat, _mm256_fmadd_pd(d, xhat, _mm256_loadu_pd(sum_dy_xhat)));
}

template <class T>
void row_gradient_sums(const T* dy_row, const T* x_row, std::int64_t values, double mean, double inv_std,
                       const double* gamma_wide, double* sum_dy, double* sum_dy_xhat, __m256d* sum_dg,
                       __m256d* sum_dg_xhat) {
  const __m256d vm = _mm256_set1_pd(mean), vs = _mm256_set1_pd(inv_std);
  __m256d a[4], b[4];
  for (int v = 0; v < 4; ++v) a[v] = _mm256_setzero_pd(), b[v] = _mm256_setzero_pd();
  std::int64_t i = 0;
  for (; i + 16 <= values; i += 16) {
    for (int v = 0; v < 4; ++v) {
      const std::int64_t k = i + 4 * v;
      add_gradient_terms(dy_row + k, x_row + k, gamma_wide + k, vm, vs, sum_dy + k, sum_dy_xhat + k, a[v], b[v]);
    }
  }
  for (; i + 4 <= values; i += 4) {
    add_gradient_terms(dy_row + i, x_row + i, gamma_wide + i, vm, vs, sum_dy + i, sum_dy_xhat + i, a[0], b[0]);
  }
  double ta = 0.0, tb = 0.0;
  for (; i < values; ++i) {
    const double d = static_cast<double>(dy_row[i]), xhat = (static_cast<double>(x_row[i]) - mean) * inv_std;
    const double dg = d * gamma_wide[i];
    ta += dg;
    tb += dg * xhat;
    sum_dy[i] += d;
    sum_dy_xhat[i] += d * xhat;
  }
  *sum_dg = _mm256_add_pd(sum_of(a), _mm256_setr_pd(ta, 0.0, 0.0, 0.0));
  *sum_dg_xhat = _mm256_add_pd(sum_of(b), _mm256_setr_pd(tb, 0.0, 0.0, 0.0));
}

// dx = dy * gamma * dy_scale + ((x - mean) * x_scale + offset), in T.
template <class T>
void gradient_row(const T* dy_row, const T* x_row, std::int64_t values, double mean, double dy_scale, double x_scale,
                  double offset, const T* gamma, T* out) {
  using S = Vec<T>;
  T center, center_low;
  split<Isa::avx2_fma>(mean, &center, &center_low);
  const T a = static_cast<T>(dy_scale), b = static_cast<T>(x_scale), d = static_cast<T>(offset);
  const typename S::V vcenter = splat(center), vcenter_low = splat(center_low), va = splat(a), vb = splat(b);
  const typename S::V vd = splat(d);
  std::int64_t k = 0;
  for (; k + S::lanes <= values; k += S::lanes) {
    const typename S::V centered = sub(sub(S::load(x_row + k), vcenter), vcenter_low);
    const typename S::V dg = S::mul(S::load(dy_row + k), S::load(gamma + k));
    S::store(out + k, S::fmadd(dg, va, S::fmadd(centered, vb, vd)));
  }
  for (; k < values; ++k) out[k] = dy_row[k] * gamma[k] * a + (((x_row[k] - center) - center_low) * b + d);
}

template <class T>
void backward(const T* dy, const T* x, std::int64_t rows, std::int64_t values, const double* mean,
              const double* inv_std, const T* gamma, const double* gamma_wide, T* dx, double* sum_dy,
              double* sum_dy_xhat) noexcept {
  const __m256d n = _mm256_set1_pd(static_cast<double>(values)), zero = _mm256_setzero_pd();
  for (std::int64_t first = 0; first < rows; first += kBatch) {
    const int batch = static_cast<int>(rows - first < kBatch ? rows - first : kBatch);
    alignas(32) double s[kBatch] = {};
    __m256d a[kBatch], b[kBatch];
    for (int j = 0; j < kBatch; ++j) {
      a[j] = zero, b[j] = zero;
      if (j >= batch) continue;
      const std::int64_t r = first + j;
      s[j] = inv_std[r];
      row_gradient_sums(dy + r * values, x + r * values, values, mean[r], s[j], gamma_wide, sum_dy, sum_dy_xhat,
                        a + j, b + j);
    }
    // dx = s * (dy*gamma - mean(dg) - xhat * mean(dg_xhat)): x_scale = -s * s * mean(dg_xhat), offset = -s * mean(dg).
    const __m256d vs = _mm256_load_pd(s), minus_s = _mm256_sub_pd(zero, vs);
    alignas(32) double x_scale[kBatch], offset[kBatch];
    _mm256_store_pd(x_scale, _mm256_mul_pd(_mm256_mul_pd(minus_s, vs), _mm256_div_pd(lane_sums(b), n)));
    _mm256_store_pd(offset, _mm256_mul_pd(minus_s, _mm256_div_pd(lane_sums(a), n)));
    for (int j = 0; j < batch; ++j) {
      const std::int64_t r = first + j;
      gradient_row(dy + r * values, x + r * values, values, mean[r], s[j], x_scale[j], offset[j], gamma, dx + r * values);
    }
  }
}

}  // namespace convkit::avx2::short_rows
