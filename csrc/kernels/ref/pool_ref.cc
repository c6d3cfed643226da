// The reference pooling kernels: plain loops over the channels (which the compiler may still vectorise).
#include "kernels/pool_ukernel.h"

namespace convkit {
namespace {

template <class T>
void max_tap(std::int64_t channels, const T* x, TapOrdinal<T> tap, T* best, TapOrdinal<T>* ordinal) noexcept {
  for (std::int64_t k = 0; k < channels; ++k) {
    // !(v <= b) holds for a larger or NaN v; b == b fails for a NaN b. Branch-free selects.
    const T v = x[k], b = best[k];
    const bool take = !(v <= b) && b == b;
    best[k] = take ? v : b;
    ordinal[k] = take ? tap : ordinal[k];
  }
}

template <class T>
void sum_tap(std::int64_t channels, const T* x, T* sum) noexcept {
  for (std::int64_t k = 0; k < channels; ++k) sum[k] += x[k];
}

}  // namespace

const PoolUkernel<float> f32_pool_1x1_ref{"f32-pool-1x1-ref", Isa::ref, &max_tap<float>, &sum_tap<float>};
const PoolUkernel<double> f64_pool_1x1_ref{"f64-pool-1x1-ref", Isa::ref, &max_tap<double>, &sum_tap<double>};

template <>
const PoolUkernel<float>& pool_reference_ukernel<float>() {
  return f32_pool_1x1_ref;
}
template <>
const PoolUkernel<double>& pool_reference_ukernel<double>() {
  return f64_pool_1x1_ref;
}

}  // namespace convkit
