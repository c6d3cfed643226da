// The reference pooling kernels: plain loops, taps outside and channels inside (which the compiler may
// still vectorise).
#include <algorithm>

#include "kernels/pool_ukernel.h"

namespace convkit {
namespace {

template <class T>
void max_window(std::int64_t channels, std::int64_t taps, const T* const* src, const std::int64_t* tap_index,
                T* best, std::int64_t* index) noexcept {
  std::copy(src[0], src[0] + channels, best);
  if (index) std::fill(index, index + channels, std::int64_t(0));  // tap ordinals until the end
  for (std::int64_t t = 1; t < taps; ++t) {
    for (std::int64_t k = 0; k < channels; ++k) {
      // !(v <= b) holds for a larger or NaN v; b == b fails for a NaN b. Branch-free selects.
      const T v = src[t][k], b = best[k];
      const bool take = !(v <= b) && b == b;
      best[k] = take ? v : b;
      if (index) index[k] = take ? t : index[k];
    }
  }
  if (index) {
    for (std::int64_t k = 0; k < channels; ++k) index[k] = tap_index[index[k]];
  }
}

template <class T>
void avg_gather(std::int64_t channels, std::int64_t windows, const T* const* dy, const T* divisor, T* dx) noexcept {
  std::fill(dx, dx + channels, T(0));
  for (std::int64_t t = 0; t < windows; ++t) {
    for (std::int64_t k = 0; k < channels; ++k) dx[k] += dy[t][k] / divisor[t];
  }
}

template <class T>
void sum_window(std::int64_t channels, std::int64_t taps, const T* const* src, T* sum) noexcept {
  std::copy(src[0], src[0] + channels, sum);
  for (std::int64_t t = 1; t < taps; ++t) {
    for (std::int64_t k = 0; k < channels; ++k) sum[k] += src[t][k];
  }
}

template <class T>
std::int64_t max_scatter(std::int64_t channels, const PoolRowWindows& windows, T* dx_row, std::int64_t row_index,
                         const T* dy, const std::int64_t* index, bool fresh) noexcept {
  std::int64_t matches = 0;
  for (std::int64_t o = 0; o < windows.count; ++o, dy += channels, index += channels) {
    const std::int64_t assign_from = fresh ? (o > 0 ? windows.end[o - 1] : windows.begin[o]) : windows.end[o];
    for (std::int64_t w = windows.begin[o]; w < windows.end[o]; w += windows.step) {
      T* dx = dx_row + w * channels;
      for (std::int64_t k = 0; k < channels; ++k) {
        const bool hit = index[k] == row_index + w;
        dx[k] = (w < assign_from ? dx[k] : T(0)) + (hit ? dy[k] : T(0));
        matches += hit;
      }
    }
  }
  return matches;
}

template <class T>
constexpr PoolUkernel<T> reference_kernel(const char* name) {
  return {name, Isa::ref, &max_window<T>, &sum_window<T>, &avg_gather<T>, &max_scatter<T>};
}

}  // namespace

const PoolUkernel<float> f32_pool_1x1_ref = reference_kernel<float>("f32-pool-1x1-ref");
const PoolUkernel<double> f64_pool_1x1_ref = reference_kernel<double>("f64-pool-1x1-ref");

}  // namespace convkit
