// AVX2 short-row normalization kernels (contract in kernels/norm_ukernel.h), for float and double: the loops
// of kernels/norm_short_rows.h with intrinsics. The row sums run in double, 16 values per step into four
// independent accumulators (a chain of adds, one per step, would otherwise wait on the add latency); the
// elementwise passes run in T, a whole vector of T per step. Values that do not fill a vector run scalar.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/avx2/norm_columns_avx2.h"
#include "kernels/avx2/simd_avx2.h"
#include "kernels/norm_short_rows.h"

namespace convkit::avx2::short_rows {

using convkit::short_rows::finish_statistics;
using convkit::short_rows::split;

template <class T>
using Vec = std::conditional_t<std::is_same_v<T, float>, F32x8, F64x4>;

inline __m256 splat(float v) { return _mm256_set1_ps(v); }
inline __m256d splat(double v) { return _mm256_set1_pd(v); }
inline __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
inline __m256d sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }

inline double sum_lanes(__m256d v) {
  const __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
}

// Calls step(k, lane) for k = 0, 4, 8, ... while 4 values remain (lane = which of four accumulators takes
// those 4 values: k / 4 % 4 in steps of 16), and returns the first value left over (fewer than 4 remain).
template <class Step>
std::int64_t for_each_quad(std::int64_t values, Step&& step) {
  std::int64_t k = 0;
  for (; k + 16 <= values; k += 16) step(k, 0), step(k + 4, 1), step(k + 8, 2), step(k + 12, 3);
  for (; k + 4 <= values; k += 4) step(k, 0);
  return k;
}

template <class T>
void row_sums(const T* row, std::int64_t values, double shift, double* s1, double* s2) {
  const __m256d k = _mm256_set1_pd(shift);
  __m256d a1[4], a2[4];
  for (int v = 0; v < 4; ++v) a1[v] = _mm256_setzero_pd(), a2[v] = _mm256_setzero_pd();
  std::int64_t i = for_each_quad(values, [&](std::int64_t at, int lane) {
    const __m256d d = _mm256_sub_pd(load_as_double(row + at), k);
    a1[lane] = _mm256_add_pd(a1[lane], d);
    a2[lane] = _mm256_fmadd_pd(d, d, a2[lane]);
  });
  double t1 = sum_lanes(_mm256_add_pd(_mm256_add_pd(a1[0], a1[1]), _mm256_add_pd(a1[2], a1[3])));
  double t2 = sum_lanes(_mm256_add_pd(_mm256_add_pd(a2[0], a2[1]), _mm256_add_pd(a2[2], a2[3])));
  for (; i < values; ++i) {
    const double d = static_cast<double>(row[i]) - shift;
    t1 += d;
    t2 += d * d;
  }
  *s1 = t1, *s2 = t2;
}

template <class T>
void forward(const T* x, std::int64_t rows, std::int64_t values, double eps, const T* gamma, const T* beta, T* y,
             double* mean, double* inv_std) noexcept {
  using S = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * values;
    double s1, s2;
    const double shift = static_cast<double>(row[0]);
    row_sums(row, values, shift, &s1, &s2);
    finish_statistics<Isa::avx2_fma>(shift, s1, s2, values, eps, mean + r, inv_std + r);
    T center, center_low;
    split<Isa::avx2_fma>(mean[r], &center, &center_low);
    const T scale = static_cast<T>(inv_std[r]);
    const typename S::V vcenter = splat(center), vcenter_low = splat(center_low), vscale = splat(scale);
    T* out = y + r * values;
    std::int64_t k = 0;
    for (; k + S::lanes <= values; k += S::lanes) {
      const typename S::V centered = sub(sub(S::load(row + k), vcenter), vcenter_low);
      S::store(out + k, S::fmadd(S::mul(centered, vscale), S::load(gamma + k), S::load(beta + k)));
    }
    for (; k < values; ++k) out[k] = ((row[k] - center) - center_low) * scale * gamma[k] + beta[k];
  }
}

template <class T>
void backward(const T* dy, const T* x, std::int64_t rows, std::int64_t values, const double* mean,
              const double* inv_std, const T* gamma, const double* gamma_wide, T* dx, double* sum_dy,
              double* sum_dy_xhat) noexcept {
  using S = Vec<T>;
  const double n = static_cast<double>(values);
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* dy_row = dy + r * values;
    const T* x_row = x + r * values;
    const double m = mean[r], s = inv_std[r];
    // One pass: the row's sums of dy*gamma and dy*gamma*xhat, and the columns' sums of dy and dy*xhat.
    const __m256d vm = _mm256_set1_pd(m), vs = _mm256_set1_pd(s);
    __m256d a[4], b[4];
    for (int v = 0; v < 4; ++v) a[v] = _mm256_setzero_pd(), b[v] = _mm256_setzero_pd();
    std::int64_t i = for_each_quad(values, [&](std::int64_t k, int lane) {
      const __m256d d = load_as_double(dy_row + k);
      const __m256d xhat = _mm256_mul_pd(_mm256_sub_pd(load_as_double(x_row + k), vm), vs);
      const __m256d dg = _mm256_mul_pd(d, _mm256_loadu_pd(gamma_wide + k));
      a[lane] = _mm256_add_pd(a[lane], dg);
      b[lane] = _mm256_fmadd_pd(dg, xhat, b[lane]);
      _mm256_storeu_pd(sum_dy + k, _mm256_add_pd(_mm256_loadu_pd(sum_dy + k), d));
      _mm256_storeu_pd(sum_dy_xhat + k, _mm256_fmadd_pd(d, xhat, _mm256_loadu_pd(sum_dy_xhat + k)));
    });
    double sum_dg = sum_lanes(_mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])));
    double sum_dg_xhat = sum_lanes(_mm256_add_pd(_mm256_add_pd(b[0], b[1]), _mm256_add_pd(b[2], b[3])));
    for (; i < values; ++i) {
      const double d = static_cast<double>(dy_row[i]), xhat = (static_cast<double>(x_row[i]) - m) * s;
      const double dg = d * gamma_wide[i];
      sum_dg += dg;
      sum_dg_xhat += dg * xhat;
      sum_dy[i] += d;
      sum_dy_xhat[i] += d * xhat;
    }
    // dx = dy*gamma * s + (x - m) * (-s * s * mean(dg_xhat)) - s * mean(dg), each coefficient rounded once.
    T center, center_low;
    split<Isa::avx2_fma>(m, &center, &center_low);
    const T dy_scale = static_cast<T>(s), x_scale = static_cast<T>(-s * s * (sum_dg_xhat / n));
    const T offset = static_cast<T>(-s * (sum_dg / n));
    const typename S::V vcenter = splat(center), vcenter_low = splat(center_low), vdy_scale = splat(dy_scale);
    const typename S::V vx_scale = splat(x_scale), voffset = splat(offset);
    T* out = dx + r * values;
    std::int64_t k = 0;
    for (; k + S::lanes <= values; k += S::lanes) {
      const typename S::V centered = sub(sub(S::load(x_row + k), vcenter), vcenter_low);
      const typename S::V dg = S::mul(S::load(dy_row + k), S::load(gamma + k));
      S::store(out + k, S::fmadd(dg, vdy_scale, S::fmadd(centered, vx_scale, voffset)));
    }
    for (; k < values; ++k) {
      out[k] = dy_row[k] * gamma[k] * dy_scale + (((x_row[k] - center) - center_low) * x_scale + offset);
    }
  }
}

}  // namespace convkit::avx2::short_rows
