// AVX2 column sums for the normalization kernels (contract in kernels/norm_ukernel.h): the reductions of
// kernels/norm_rows.h written with intrinsics, because the compiler's own vectorisation of those loops
// splits the 16 accumulators of a column into odd vector and scalar pieces. The accumulators of a column of
// 16 channels (4 vectors of doubles per sum) stay in registers over all the pixels; channels that do not
// fill a vector run the portable loops.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/norm_rows.h"

namespace convkit::avx2 {

inline __m256d load_as_double(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline __m256d load_as_double(const double* p) { return _mm256_loadu_pd(p); }

// Calls columns(vectors constant, c) for columns of vectors * 4 channels from c, 4 or 1 vectors wide, and
// returns the first channel left over (fewer than 4).
template <class Columns>
std::int64_t for_each_vector_column(std::int64_t channels, Columns&& columns) {
  std::int64_t c = 0;
  for (; c + 16 <= channels; c += 16) columns(std::integral_constant<int, 4>(), c);
  for (; c + 4 <= channels; c += 4) columns(std::integral_constant<int, 1>(), c);
  return c;
}

template <int vectors, class T>
void column_block_sums(const T* x, std::int64_t pixels, std::int64_t channels, const T* shift, double* s1,
                       double* s2) {
  __m256d k[vectors], a1[vectors], a2[vectors];
  for (int v = 0; v < vectors; ++v) {
    k[v] = load_as_double(shift + 4 * v), a1[v] = _mm256_setzero_pd(), a2[v] = _mm256_setzero_pd();
  }
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* row = x + p * channels;
    for (int v = 0; v < vectors; ++v) {
      const __m256d d = _mm256_sub_pd(load_as_double(row + 4 * v), k[v]);
      a1[v] = _mm256_add_pd(a1[v], d);
      a2[v] = _mm256_fmadd_pd(d, d, a2[v]);
    }
  }
  for (int v = 0; v < vectors; ++v) _mm256_storeu_pd(s1 + 4 * v, a1[v]), _mm256_storeu_pd(s2 + 4 * v, a2[v]);
}

template <int vectors, class T>
void column_gradient_sums(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels,
                          const double* center, double* sum_dy, double* sum_dy_centered) {
  __m256d k[vectors], a1[vectors], a2[vectors];
  for (int v = 0; v < vectors; ++v) {
    k[v] = _mm256_loadu_pd(center + 4 * v), a1[v] = _mm256_setzero_pd(), a2[v] = _mm256_setzero_pd();
  }
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* dy_row = dy + p * channels;
    const T* x_row = x + p * channels;
    for (int v = 0; v < vectors; ++v) {
      const __m256d d = load_as_double(dy_row + 4 * v);
      a1[v] = _mm256_add_pd(a1[v], d);
      a2[v] = _mm256_fmadd_pd(d, _mm256_sub_pd(load_as_double(x_row + 4 * v), k[v]), a2[v]);
    }
  }
  for (int v = 0; v < vectors; ++v) {
    _mm256_storeu_pd(sum_dy + 4 * v, a1[v]), _mm256_storeu_pd(sum_dy_centered + 4 * v, a2[v]);
  }
}

template <class T>
void block_sums(const T* x, std::int64_t pixels, std::int64_t channels, const T* shift, double* s1,
                double* s2) noexcept {
  const std::int64_t rest = for_each_vector_column(channels, [&](auto vectors, std::int64_t c) {
    column_block_sums<vectors()>(x + c, pixels, channels, shift + c, s1 + c, s2 + c);
  });
  for (std::int64_t c = rest; c < channels; ++c) {
    norm_rows::column_block_sums<Isa::avx2_fma, 1>(x + c, pixels, channels, shift + c, s1 + c, s2 + c);
  }
}

template <class T>
void gradient_sums(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                   double* sum_dy, double* sum_dy_centered) noexcept {
  const std::int64_t rest = for_each_vector_column(channels, [&](auto vectors, std::int64_t c) {
    column_gradient_sums<vectors()>(dy + c, x + c, pixels, channels, center + c, sum_dy + c, sum_dy_centered + c);
  });
  for (std::int64_t c = rest; c < channels; ++c) {
    norm_rows::column_gradient_sums<Isa::avx2_fma, 1>(dy + c, x + c, pixels, channels, center + c, sum_dy + c,
                                                      sum_dy_centered + c);
  }
}

}  // namespace convkit::avx2
