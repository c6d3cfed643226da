// AVX2 pooling kernels: one vector of channels per step; the channel tail goes to the reference kernel.
#include "kernels/avx2/simd_avx2.h"
#include "kernels/pool_ukernel.h"

namespace convkit {
namespace {

using avx2::F32x8;
using avx2::F64x4;

// What max_tap needs beyond simd_avx2.h: the take mask, the value select, and the ordinals, which are as
// wide as the values (TapOrdinal), so one mask selects both.
template <class S>
struct MaxLanes;

template <>
struct MaxLanes<F32x8> {
  static __m256 take(__m256 v, __m256 b) {  // v > b or v NaN, and b not NaN
    return _mm256_and_ps(_mm256_cmp_ps(v, b, _CMP_NLE_UQ), _mm256_cmp_ps(b, b, _CMP_ORD_Q));
  }
  static __m256 select(__m256 take, __m256 v, __m256 b) { return _mm256_blendv_ps(b, v, take); }
  static __m256i bits(__m256 mask) { return _mm256_castps_si256(mask); }
  static __m256i ordinals(std::int32_t tap) { return _mm256_set1_epi32(tap); }
};

template <>
struct MaxLanes<F64x4> {
  static __m256d take(__m256d v, __m256d b) {
    return _mm256_and_pd(_mm256_cmp_pd(v, b, _CMP_NLE_UQ), _mm256_cmp_pd(b, b, _CMP_ORD_Q));
  }
  static __m256d select(__m256d take, __m256d v, __m256d b) { return _mm256_blendv_pd(b, v, take); }
  static __m256i bits(__m256d mask) { return _mm256_castpd_si256(mask); }
  static __m256i ordinals(std::int64_t tap) { return _mm256_set1_epi64x(tap); }
};

template <class S>
void max_tap(std::int64_t channels, const typename S::T* x, TapOrdinal<typename S::T> tap, typename S::T* best,
             TapOrdinal<typename S::T>* ordinal) noexcept {
  using L = MaxLanes<S>;
  const __m256i tap_lanes = L::ordinals(tap);
  std::int64_t k = 0;
  for (; k + S::lanes <= channels; k += S::lanes) {
    const auto v = S::load(x + k), b = S::load(best + k);
    const auto take = L::take(v, b);
    S::store(best + k, L::select(take, v, b));
    auto* o = reinterpret_cast<__m256i*>(ordinal + k);
    _mm256_storeu_si256(o, _mm256_blendv_epi8(_mm256_loadu_si256(o), tap_lanes, L::bits(take)));
  }
  if (k < channels) {
    pool_reference_ukernel<typename S::T>().max_tap(channels - k, x + k, tap, best + k, ordinal + k);
  }
}

template <class S>
void sum_tap(std::int64_t channels, const typename S::T* x, typename S::T* sum) noexcept {
  std::int64_t k = 0;
  for (; k + S::lanes <= channels; k += S::lanes) S::store(sum + k, S::add(S::load(sum + k), S::load(x + k)));
  if (k < channels) pool_reference_ukernel<typename S::T>().sum_tap(channels - k, x + k, sum + k);
}

}  // namespace

const PoolUkernel<float> f32_pool_1x8_avx2{"f32-pool-1x8-avx2", Isa::avx2_fma, &max_tap<F32x8>, &sum_tap<F32x8>};
const PoolUkernel<double> f64_pool_1x4_avx2{"f64-pool-1x4-avx2", Isa::avx2_fma, &max_tap<F64x4>, &sum_tap<F64x4>};

}  // namespace convkit
