// The pooling microkernel contract: one call folds one tap of a window (the `channels` contiguous values
// of one input pixel) into an output pixel's running values, for every channel. No allocation, threads or
// shape logic: the driver (ops/pool.cc) walks the windows and calls the kernel once per tap.
#pragma once
#include <cstdint>
#include <type_traits>

#include "core/cpu_features.h"

namespace convkit {

// Max pooling tracks each channel's argmax as the tap's ordinal in its window, in an integer as wide as
// T: the compare and the two selects then share one lane width and vectorise.
template <class T>
using TapOrdinal = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;

// For every channel k: best[k] = x[k] and ordinal[k] = tap where x[k] > best[k] or x[k] is NaN, unless
// best[k] already is NaN. So the first maximum in tap order wins, and so does the first NaN.
template <class T>
using PoolMaxTapFn = void (*)(std::int64_t channels, const T* x, TapOrdinal<T> tap, T* best,
                              TapOrdinal<T>* ordinal) noexcept;
// For every channel k: sum[k] += x[k].
template <class T>
using PoolSumTapFn = void (*)(std::int64_t channels, const T* x, T* sum) noexcept;

template <class T>
struct PoolUkernel {
  const char* name;  // dtype-pool-1xL-isa, L the channels of its vector step
  Isa isa;
  PoolMaxTapFn<T> max_tap;
  PoolSumTapFn<T> sum_tap;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const PoolUkernel<float> f32_pool_1x1_ref;
extern const PoolUkernel<double> f64_pool_1x1_ref;
// The reference kernel of dtype T, which the SIMD kernels call for their channel tails.
template <class T>
const PoolUkernel<T>& pool_reference_ukernel();
#if CONVKIT_HAVE_AVX2
extern const PoolUkernel<float> f32_pool_1x8_avx2;
extern const PoolUkernel<double> f64_pool_1x4_avx2;
#endif

}  // namespace convkit
