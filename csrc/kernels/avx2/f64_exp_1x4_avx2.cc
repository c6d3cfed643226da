// exp of 4 doubles at a time (AVX2 + FMA). Cody-Waite reduction x = k ln2 + r with |r| <= ln2 / 2 (ln2 in
// two parts, the products fused, so r carries no cancellation error), exp(r) by its Taylor polynomial of
// degree 13 (truncation < 1e-17 relative) in Horner form, and the scaling by 2^k as two exponent-field
// multiplies 2^k1 * 2^k2 (k1 + k2 = k), each a normal double, so that results that underflow are rounded
// once into the subnormals. Arguments are clamped to [-746, 710], where exp is already 0 or +inf; NaN
// lanes are restored at the end (the clamp would lose them).
#include <immintrin.h>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/exp_ukernel.h"

namespace convkit {
namespace {

__m256d exp4(__m256d x) {
  const __m256d nan_lanes = _mm256_cmp_pd(x, x, _CMP_UNORD_Q);
  const __m256d clamped = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-746.0)), _mm256_set1_pd(710.0));
  const __m256d k = _mm256_round_pd(_mm256_mul_pd(clamped, _mm256_set1_pd(0x1.71547652b82fep+0)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fefa39efp-1), clamped);  // ln2, high part
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);                // ln2, low part

  static constexpr double kInverseFactorials[] = {
      1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
      1.0 / 40320.0,      1.0 / 5040.0,      1.0 / 720.0,      1.0 / 120.0,     1.0 / 24.0,
      1.0 / 6.0,          0.5,               1.0,              1.0};  // 1/13! down to 1/0!
  __m256d p = _mm256_set1_pd(kInverseFactorials[0]);
  for (int i = 1; i < 14; ++i) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kInverseFactorials[i]));

  // 2^k1 and 2^k2 from their biased exponents, k in [-1076, 1025] after the clamp.
  const __m128i k32 = _mm256_cvtpd_epi32(k);
  const __m128i k1 = _mm_srai_epi32(k32, 1);
  const __m128i k2 = _mm_sub_epi32(k32, k1);
  const __m128i bias = _mm_set1_epi32(1023);
  auto power_of_two = [&](__m128i e) {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(e, bias)), 52));
  };
  const __m256d result = _mm256_mul_pd(_mm256_mul_pd(p, power_of_two(k1)), power_of_two(k2));
  return _mm256_blendv_pd(result, x, nan_lanes);
}

void exp_avx2(const double* in, double* out, std::int64_t n) noexcept {
  using S = avx2::F64x4;
  std::int64_t i = 0;
  for (; i + S::lanes <= n; i += S::lanes) S::store(out + i, exp4(S::load(in + i)));
  if (i < n) {
    const S::Mask tail = S::first_lanes(n - i);
    S::store(out + i, tail, exp4(S::load(in + i, tail)));
  }
}

}  // namespace

const ExpUkernel f64_exp_1x4_avx2 = {"f64-exp-1x4-avx2", Isa::avx2_fma, &exp_avx2};

}  // namespace convkit
