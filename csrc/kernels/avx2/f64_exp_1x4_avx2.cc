// exp and expm1 of 4 doubles at a time (AVX2 + FMA). Cody-Waite reduction x = k ln2 + r with
// |r| <= ln2 / 2 (ln2 in two parts, the products fused, so r carries no cancellation error), and
// expm1(r) = r + r^2/2! + ... + r^13/13! (truncation < 2e-17 relative) in Horner form. Then
//   exp(x)   = 2^k * (1 + expm1(r)), the scaling done as two exponent-field multiplies 2^k1 * 2^k2
//              (k1 + k2 = k), each a normal double, so results that underflow are rounded once;
//   expm1(x) = 2^k * expm1(r) + (2^k - 1), one fused multiply-add (for k = 0, expm1(r) itself, so it keeps
//              its relative accuracy near 0).
// Arguments are clamped to where the result is already saturated ([-746, 710] for exp, [-60, 0] for
// expm1); NaN lanes are restored at the end (the clamp would lose them).
#include <immintrin.h>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/exp_ukernel.h"

namespace convkit {
namespace {

struct Reduced {
  __m128i k;  // x = k ln2 + r
  __m256d r;
};

Reduced reduce(__m256d x) {
  const __m256d k = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(0x1.71547652b82fep+0)),  // log2(e)
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fefa39efp-1), x);  // ln2, high part
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);         // ln2, low part
  return {_mm256_cvtpd_epi32(k), r};
}

// P(r) with expm1(r) = P(r) * r for |r| <= ln2 / 2: the Taylor series up to r^13 / 13!, divided by r.
__m256d expm1_over_r(__m256d r) {
  static constexpr double kInverseFactorials[] = {
      1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
      1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,      1.0 / 24.0,      1.0 / 6.0,      0.5,
      1.0};  // 1/13! down to 1/1!
  __m256d p = _mm256_set1_pd(kInverseFactorials[0]);
  for (int i = 1; i < 13; ++i) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kInverseFactorials[i]));
  return p;
}

// 2^e for e in [-1022, 1023], from its biased exponent.
__m256d power_of_two(__m128i e) {
  const __m128i biased = _mm_add_epi32(e, _mm_set1_epi32(1023));
  return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_cvtepi32_epi64(biased), 52));
}

__m256d restore_nan(__m256d result, __m256d x) {
  return _mm256_blendv_pd(result, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
}

__m256d exp4(__m256d x) {
  const __m256d clamped = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-746.0)), _mm256_set1_pd(710.0));
  const Reduced red = reduce(clamped);  // k in [-1076, 1025]
  const __m256d p = _mm256_fmadd_pd(expm1_over_r(red.r), red.r, _mm256_set1_pd(1.0));
  const __m128i k1 = _mm_srai_epi32(red.k, 1);
  const __m128i k2 = _mm_sub_epi32(red.k, k1);
  return restore_nan(_mm256_mul_pd(_mm256_mul_pd(p, power_of_two(k1)), power_of_two(k2)), x);
}

__m256d expm1_4(__m256d x) {
  const __m256d clamped = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-60.0)), _mm256_setzero_pd());
  const Reduced red = reduce(clamped);  // k in [-87, 0]
  // 2^k * P is exact; 2^k - 1 is exact down to k = -53, below which the result is -1 to the last bit anyway.
  const __m256d scale = power_of_two(red.k);
  const __m256d result = _mm256_fmadd_pd(_mm256_mul_pd(scale, expm1_over_r(red.r)), red.r,
                                         _mm256_sub_pd(scale, _mm256_set1_pd(1.0)));
  // expm1(x) has the sign of x; the or keeps expm1(-0) = -0, which the reduction turns into +0.
  return restore_nan(_mm256_or_pd(result, _mm256_and_pd(x, _mm256_set1_pd(-0.0))), x);
}

template <__m256d (*f)(__m256d)>
void map(const double* in, double* out, std::int64_t n) noexcept {
  using S = avx2::F64x4;
  std::int64_t i = 0;
  for (; i + S::lanes <= n; i += S::lanes) S::store(out + i, f(S::load(in + i)));
  if (i < n) {
    const S::Mask tail = S::first_lanes(n - i);
    S::store(out + i, tail, f(S::load(in + i, tail)));
  }
}

}  // namespace

const ExpUkernel f64_exp_1x4_avx2 = {"f64-exp-1x4-avx2", Isa::avx2_fma, &map<exp4>, &map<expm1_4>};

}  // namespace convkit
