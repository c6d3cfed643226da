// One AVX2 vector of float (8 lanes) or double (4 lanes) behind one interface, so that a kernel written
// once as a template over S serves both dtypes. Only included by translation units under kernels/avx2/,
// which are compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace convkit::avx2 {

struct F32x8 {
  using T = float;
  using V = __m256;
  using Mask = __m256i;  // all-ones lanes are loaded/stored, zero lanes are left alone
  static constexpr int lanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load_aligned(const T* p) { return _mm256_load_ps(p); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V broadcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // b where either is NaN
  static V less_select(V v, V if_less, V otherwise) {   // v < 0 ? if_less : otherwise, lane by lane
    return _mm256_blendv_ps(otherwise, if_less, _mm256_cmp_ps(v, zero(), _CMP_LT_OQ));
  }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static Mask first_lanes(std::int64_t n) {  // lanes [0, n) on
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const T* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(T* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
};

struct F64x4 {
  using T = double;
  using V = __m256d;
  using Mask = __m256i;
  static constexpr int lanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load_aligned(const T* p) { return _mm256_load_pd(p); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V broadcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V less_select(V v, V if_less, V otherwise) {
    return _mm256_blendv_pd(otherwise, if_less, _mm256_cmp_pd(v, zero(), _CMP_LT_OQ));
  }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static Mask first_lanes(std::int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load(const T* p, Mask m) { return _mm256_maskload_pd(p, m); }
  static void store(T* p, Mask m, V v) { _mm256_maskstore_pd(p, m, v); }
};

}  // namespace convkit::avx2
