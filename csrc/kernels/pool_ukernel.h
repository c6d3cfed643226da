// The pooling microkernel contract. One call reduces a whole window for every channel: the window's taps
// are `taps` (>= 1) pointers to the `channels` contiguous values of one input pixel each, in window order.
// A kernel keeps a vector of channels in registers across all the taps and stores it once. No allocation,
// threads or shape logic: the driver (ops/pool.cc) lists the taps and splits the work.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit {

// For every channel k: best[k] = the maximum of src[t][k] over the taps t. The first maximum in tap order
// wins, and a NaN wins over any number (the first NaN). When index is not null, index[k] = tap_index[t] of
// the winning tap t (the driver passes each tap's spatial index); without it no argmax is tracked at all.
template <class T>
using PoolMaxFn = void (*)(std::int64_t channels, std::int64_t taps, const T* const* src,
                           const std::int64_t* tap_index, T* best, std::int64_t* index) noexcept;
// For every channel k: sum[k] = the sum of src[t][k] over the taps t, added in tap order.
template <class T>
using PoolSumFn = void (*)(std::int64_t channels, std::int64_t taps, const T* const* src, T* sum) noexcept;
// Average pooling's backward pass for one input pixel, as a gather from the `windows` output pixels whose
// windows read it (in output order): dx[k] = the sum over t of dy[t][k] / divisor[t], added in order from 0.
template <class T>
using PoolAvgGatherFn = void (*)(std::int64_t channels, std::int64_t windows, const T* const* dy, const T* divisor,
                                 T* dx) noexcept;
// The windows of one output row along the innermost axis (W): window o reads columns begin[o],
// begin[o] + step, ... < end[o] of every input row its output row reads.
struct PoolRowWindows {
  std::int64_t count;
  const std::int64_t* begin;
  const std::int64_t* end;
  std::int64_t step;
};
// Max pooling's backward pass for one row of output pixels and one input row its windows read, as a
// scatter: dx_row is pixel 0 of that input row (pixel w at + w * channels) and row_index its spatial index.
// For each window o in order and channel k, each tap w of the window gets
// share = (row_index + w == index[o][k] ? dy[o][k] : 0), added to dx. With `fresh` (the row holds nothing
// yet; windows.step must be 1 and the windows must read every column), a tap no earlier window of the
// row reads (w >= end[o - 1]) is set to 0 + share instead, so the row needs no zeroing first (the + 0
// gives +0 for a dy of -0, as a sum from zero does). Returns how many (o, k) named a tap of this row. An index is only ever compared, never used as an
// address, so any value is safe.
template <class T>
using PoolMaxScatterFn = std::int64_t (*)(std::int64_t channels, const PoolRowWindows& windows, T* dx_row,
                                          std::int64_t row_index, const T* dy, const std::int64_t* index,
                                          bool fresh) noexcept;

template <class T>
struct PoolUkernel {
  const char* name;  // dtype-pool-1xL-isa, L the channels of its vector step
  Isa isa;
  PoolMaxFn<T> max;
  PoolSumFn<T> sum;
  PoolAvgGatherFn<T> avg_gather;
  PoolMaxScatterFn<T> max_scatter;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const PoolUkernel<float> f32_pool_1x1_ref;
extern const PoolUkernel<double> f64_pool_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const PoolUkernel<float> f32_pool_1x8_avx2;
extern const PoolUkernel<double> f64_pool_1x4_avx2;
#endif

}  // namespace convkit
