// AVX2 pooling kernels: one vector of channels at a time stays in registers across all the window's taps
// and is stored once; the channel tail runs the same code with masked loads and stores.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/pool_ukernel.h"

namespace convkit {
namespace {

using avx2::F32x8;
using avx2::F64x4;

// What max pooling needs beyond simd_avx2.h: the take mask, the value select, and the argmax's spatial
// index per lane, tracked in a vector of integers the width of the values (int32 for float: one blend per
// tap; windows whose indices do not fit int32 take the int64 path) and widened to int64 (the API's index
// type) at the store, so that nothing maps ordinals to indices afterwards (a gather per vector cost more
// than the whole max).
template <class S>
struct MaxLanes;

template <>
struct MaxLanes<F32x8> {
  static __m256 take(__m256 v, __m256 b) {  // v > b or v NaN, and b not NaN
    return _mm256_and_ps(_mm256_cmp_ps(v, b, _CMP_NLE_UQ), _mm256_cmp_ps(b, b, _CMP_ORD_Q));
  }
  static __m256 select(__m256 take, __m256 v, __m256 b) { return _mm256_blendv_ps(b, v, take); }
  static __m256i index(std::int64_t tap_index) { return _mm256_set1_epi32(static_cast<std::int32_t>(tap_index)); }
  static __m256i select_index(__m256 take, __m256i t, __m256i index) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(index), _mm256_castsi256_ps(t), take));
  }
  static void widen(__m256i index, std::int64_t* out) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(index)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out) + 1, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(index, 1)));
  }
};

template <>
struct MaxLanes<F64x4> {
  static __m256d take(__m256d v, __m256d b) {
    return _mm256_and_pd(_mm256_cmp_pd(v, b, _CMP_NLE_UQ), _mm256_cmp_pd(b, b, _CMP_ORD_Q));
  }
  static __m256d select(__m256d take, __m256d v, __m256d b) { return _mm256_blendv_pd(b, v, take); }
  static __m256i index(std::int64_t tap_index) { return _mm256_set1_epi64x(tap_index); }
  static __m256i select_index(__m256d take, __m256i t, __m256i index) {
    return _mm256_blendv_epi8(index, t, _mm256_castpd_si256(take));
  }
  static void widen(__m256i index, std::int64_t* out) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), index); }
};

// The int64 path of float windows whose spatial indices exceed int32: two int64 vectors per 8 lanes.
struct WideIndexLanes {
  static __m256i index(std::int64_t tap_index) { return _mm256_set1_epi64x(tap_index); }
  static void select(__m256 take, __m256i t, __m256i* index) {
    const __m256i bits = _mm256_castps_si256(take);
    index[0] = _mm256_blendv_epi8(index[0], t, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(bits)));
    index[1] = _mm256_blendv_epi8(index[1], t, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(bits, 1)));
  }
};

// The maximum over the taps for the vector of channels at k (load(p) reads a vector); with index, also the
// spatial index of the winning tap, stored to index (the first `lanes` lanes).
template <class S, class Load>
typename S::V max_of_taps(std::int64_t taps, const typename S::T* const* src, const std::int64_t* tap_index,
                          std::int64_t k, Load load, std::int64_t* index, std::int64_t lanes) {
  using L = MaxLanes<S>;
  typename S::V best = load(src[0] + k);
  if (!index) {
    for (std::int64_t t = 1; t < taps; ++t) {
      const typename S::V v = load(src[t] + k);
      best = L::select(L::take(v, best), v, best);
    }
    return best;
  }
  alignas(32) std::int64_t all[8];  // the channel tail's indices (masked stores are slow on AMD cores)
  std::int64_t* to = lanes == S::lanes ? index : all;
  // Tap indices increase in window order: the last is the largest.
  if (S::lanes == 8 && tap_index[taps - 1] > INT32_MAX) {
    __m256i winner[2] = {WideIndexLanes::index(tap_index[0]), WideIndexLanes::index(tap_index[0])};
    for (std::int64_t t = 1; t < taps; ++t) {
      const typename S::V v = load(src[t] + k);
      const typename S::V take = L::take(v, best);
      best = L::select(take, v, best);
      if constexpr (S::lanes == 8) WideIndexLanes::select(take, WideIndexLanes::index(tap_index[t]), winner);
    }
    for (int i = 0; i < 2; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(to) + i, winner[i]);
  } else {
    __m256i winner = L::index(tap_index[0]);
    for (std::int64_t t = 1; t < taps; ++t) {
      const typename S::V v = load(src[t] + k);
      const typename S::V take = L::take(v, best);
      best = L::select(take, v, best);
      winner = L::select_index(take, L::index(tap_index[t]), winner);
    }
    L::widen(winner, to);
  }
  if (to == all) std::copy(all, all + lanes, index);
  return best;
}

template <class S, class Load>
typename S::V sum_of_taps(std::int64_t taps, const typename S::T* const* src, std::int64_t k, Load load) {
  typename S::V sum = load(src[0] + k);
  for (std::int64_t t = 1; t < taps; ++t) sum = S::add(sum, load(src[t] + k));
  return sum;
}

template <class S>
void max_window(std::int64_t channels, std::int64_t taps, const typename S::T* const* src,
                const std::int64_t* tap_index, typename S::T* best, std::int64_t* index) noexcept {
  std::int64_t k = 0;
  for (; k + S::lanes <= channels; k += S::lanes) {
    S::store(best + k, max_of_taps<S>(taps, src, tap_index, k, [](const typename S::T* p) { return S::load(p); },
                                      index ? index + k : nullptr, S::lanes));
  }
  if (k < channels) {
    const typename S::Mask m = S::first_lanes(channels - k);
    S::store(best + k, m, max_of_taps<S>(taps, src, tap_index, k, [m](const typename S::T* p) { return S::load(p, m); },
                                         index ? index + k : nullptr, channels - k));
  }
}

template <class S>
void sum_window(std::int64_t channels, std::int64_t taps, const typename S::T* const* src,
                typename S::T* sum) noexcept {
  std::int64_t k = 0;
  for (; k + S::lanes <= channels; k += S::lanes) {
    S::store(sum + k, sum_of_taps<S>(taps, src, k, [](const typename S::T* p) { return S::load(p); }));
  }
  if (k < channels) {
    const typename S::Mask m = S::first_lanes(channels - k);
    S::store(sum + k, m, sum_of_taps<S>(taps, src, k, [m](const typename S::T* p) { return S::load(p, m); }));
  }
}

inline __m256 divide(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
inline __m256d divide(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }

template <class S>
void avg_gather(std::int64_t channels, std::int64_t windows, const typename S::T* const* dy,
                const typename S::T* divisor, typename S::T* dx) noexcept {
  std::int64_t k = 0;
  for (; k + S::lanes <= channels; k += S::lanes) {
    typename S::V sum = S::zero();
    for (std::int64_t t = 0; t < windows; ++t) sum = S::add(sum, divide(S::load(dy[t] + k), S::broadcast(divisor + t)));
    S::store(dx + k, sum);
  }
  for (; k < channels; ++k) {  // the channels that do not fill a vector (masked stores are slow on AMD cores)
    typename S::T sum = 0;
    for (std::int64_t t = 0; t < windows; ++t) sum += dy[t][k] / divisor[t];
    dx[k] = sum;
  }
}

inline __m256 masked(__m256 mask, __m256 v) { return _mm256_and_ps(mask, v); }
inline __m256d masked(__m256d mask, __m256d v) { return _mm256_and_pd(mask, v); }

// A vector of channels' argmax indices as offsets from `origin`, one per value lane (int32 for float, int64
// for double), or -1 where an index lies outside [origin, origin + span) (span <= INT32_MAX): then one
// integer compare per tap tells whether the index names it, however wide the spatial indices are.
inline __m256i valid_offsets(const std::int64_t* index, __m256i origin, __m256i biased_span) {
  const __m256i offset = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(index)), origin);
  // offset < span as unsigned numbers: both biased by 2^63, then a signed compare.
  const __m256i inside = _mm256_cmpgt_epi64(biased_span, _mm256_xor_si256(offset, _mm256_set1_epi64x(INT64_MIN)));
  return _mm256_blendv_epi8(_mm256_set1_epi64x(-1), offset, inside);
}

inline __m256i tap_offsets(const std::int64_t* index, __m256i origin, __m256i biased_span, F32x8) {
  const __m256 low = _mm256_castsi256_ps(valid_offsets(index, origin, biased_span));
  const __m256 high = _mm256_castsi256_ps(valid_offsets(index + 4, origin, biased_span));
  // The low 32 bits of each offset, in channel order: the shuffle interleaves the halves per 128-bit lane.
  const __m256 packed = _mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_permute4x64_epi64(_mm256_castps_si256(packed), _MM_SHUFFLE(3, 1, 2, 0));
}

inline __m256i tap_offsets(const std::int64_t* index, __m256i origin, __m256i biased_span, F64x4) {
  return valid_offsets(index, origin, biased_span);
}

inline __m256 names_tap(__m256i offsets, std::int64_t tap, F32x8) {
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(offsets, _mm256_set1_epi32(static_cast<std::int32_t>(tap))));
}
inline __m256d names_tap(__m256i offsets, std::int64_t tap, F64x4) {
  return _mm256_castsi256_pd(_mm256_cmpeq_epi64(offsets, _mm256_set1_epi64x(tap)));
}

inline std::int64_t count_lanes(__m256 mask) { return __builtin_popcount(_mm256_movemask_ps(mask)); }
inline std::int64_t count_lanes(__m256d mask) { return __builtin_popcount(_mm256_movemask_pd(mask)); }
inline __m256 either(__m256 a, __m256 b) { return _mm256_or_ps(a, b); }
inline __m256d either(__m256d a, __m256d b) { return _mm256_or_pd(a, b); }

// One vector of channels of one window, one input row: the offsets of its index from the window's first
// tap are computed once, then each tap costs one compare and one store (of 0 + share from column
// `assign_from` on, of dx + share before it).
template <class S>
std::int64_t scatter_vector(std::int64_t first, std::int64_t end, std::int64_t step, std::int64_t assign_from,
                            typename S::T* dx, typename S::V grad, __m256i offsets, std::int64_t channels) {
  typename S::V named = S::zero();
  for (std::int64_t w = first; w < end; w += step) {
    const typename S::V hit = names_tap(offsets, w - first, S());
    typename S::T* tap = dx + w * channels;
    S::store(tap, S::add(w < assign_from ? S::load(tap) : S::zero(), masked(hit, grad)));
    named = either(named, hit);
  }
  return count_lanes(named);  // the taps are distinct positions: a lane names at most one of them
}

template <class S>
std::int64_t max_scatter(std::int64_t channels, const PoolRowWindows& windows, typename S::T* dx_row,
                         std::int64_t row_index, const typename S::T* dy, const std::int64_t* index,
                         bool fresh) noexcept {
  using T = typename S::T;
  std::int64_t matches = 0;
  for (std::int64_t o = 0; o < windows.count; ++o, dy += channels, index += channels) {
    const std::int64_t first = windows.begin[o], end = windows.end[o], span = end - first;
    const std::int64_t assign_from = fresh ? (o > 0 ? windows.end[o - 1] : first) : end;
    std::int64_t k = 0;
    if (span <= INT32_MAX) {  // otherwise (windows 2^31 pixels wide) the scalar loop below does all channels
      const __m256i origin = _mm256_set1_epi64x(row_index + first);
      const __m256i biased_span = _mm256_set1_epi64x(span ^ INT64_MIN);
      for (; k + S::lanes <= channels; k += S::lanes) {
        matches += scatter_vector<S>(first, end, windows.step, assign_from, dx_row + k, S::load(dy + k),
                                     tap_offsets(index + k, origin, biased_span, S()), channels);
      }
    }
    for (; k < channels; ++k) {  // the channels that do not fill a vector
      for (std::int64_t w = first; w < end; w += windows.step) {
        const bool hit = index[k] == row_index + w;
        T& dx = dx_row[w * channels + k];
        dx = (w < assign_from ? dx : T(0)) + (hit ? dy[k] : T(0));
        matches += hit;
      }
    }
  }
  return matches;
}

template <class S>
PoolUkernel<typename S::T> avx2_kernel(const char* name) {
  return {name, Isa::avx2_fma, &max_window<S>, &sum_window<S>, &avg_gather<S>, &max_scatter<S>};
}

}  // namespace

const PoolUkernel<float> f32_pool_1x8_avx2 = avx2_kernel<F32x8>("f32-pool-1x8-avx2");
const PoolUkernel<double> f64_pool_1x4_avx2 = avx2_kernel<F64x4>("f64-pool-1x4-avx2");

}  // namespace convkit
