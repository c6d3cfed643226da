// Pooling on the GPU over the CPU's per-axis window tables (sliding, adaptive and global pooling alike).
// Forward: one thread per output value, taps in window order (D, then H, then W), as the CPU. Backward:
// one thread per output value adding its gradient into the taps with atomics (windows may overlap), after
// dx is zeroed; a max-pool index outside its window is reported, never used as an address.
#include "core/cuda/check.cuh"
#include "core/cuda/device_array.h"
#include "ops/cuda/device_ops.h"

namespace convkit::cuda {
namespace {

// Window o of axis a: begins, ends and padded counts at windows + offset[a] (+ 0, out[a], 2 * out[a]).
struct Window {
  int64_t begin, end, padded;
};

__device__ inline Window window_of(const PoolGeometry& g, int a, int64_t o) {
  int64_t offset = 0;
  for (int b = 0; b < a; ++b) offset += 3 * g.out[b];
  const int64_t* w = g.windows + offset;
  return {w[o], w[g.out[a] + o], w[2 * g.out[a] + o]};
}

struct OutputPosition {
  int64_t n, c, o[3];
};

__device__ inline OutputPosition position_of(const PoolGeometry& g, int64_t i) {
  OutputPosition p;
  p.c = i % g.channels;
  int64_t rest = i / g.channels;
  for (int a = 2; a >= 0; --a) {
    p.o[a] = rest % g.out[a];
    rest /= g.out[a];
  }
  p.n = rest;
  return p;
}

// Calls visit(flat spatial index) for every tap of the output's window, in window order.
template <class Visit>
__device__ inline void for_each_tap(const PoolGeometry& g, const OutputPosition& p, Visit visit) {
  const Window w0 = window_of(g, 0, p.o[0]), w1 = window_of(g, 1, p.o[1]), w2 = window_of(g, 2, p.o[2]);
  for (int64_t d = w0.begin; d < w0.end; d += g.step[0]) {
    for (int64_t h = w1.begin; h < w1.end; h += g.step[1]) {
      for (int64_t w = w2.begin; w < w2.end; w += g.step[2]) visit((d * g.in[1] + h) * g.in[2] + w);
    }
  }
}

__device__ inline int64_t divisor(const PoolGeometry& g, const OutputPosition& p, bool count_include_pad) {
  int64_t count = 1;
  for (int a = 0; a < 3; ++a) {
    const Window w = window_of(g, a, p.o[a]);
    count *= count_include_pad ? w.padded : (w.end - w.begin - 1) / g.step[a] + 1;
  }
  return count;
}

int64_t output_count(const PoolGeometry& g) { return g.batch * g.out[0] * g.out[1] * g.out[2] * g.channels; }
int64_t input_pixels(const PoolGeometry& g) { return g.in[0] * g.in[1] * g.in[2]; }

template <class T>
__global__ void max_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t* indices) {
  const int64_t pixels = g.in[0] * g.in[1] * g.in[2];
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * g.out[0] * g.out[1] * g.out[2] * g.channels) {
    const OutputPosition p = position_of(g, i);
    const T* image = x + p.n * pixels * g.channels + p.c;
    T best = T(0);
    int64_t best_index = -1;
    bool nan = false;
    for_each_tap(g, p, [&](int64_t tap) {
      const T v = image[tap * g.channels];
      if (nan) return;
      if (best_index < 0 || v != v || v > best) {
        best = v;
        best_index = tap;
        nan = v != v;  // the first NaN wins over everything after it
      }
    });
    y[i] = best;
    if (indices) indices[i] = best_index;
  }
}

template <class T>
__global__ void max_backward_kernel(PoolGeometry g, const T* dy, const int64_t* indices, T* dx, int* bad_index) {
  const int64_t pixels = g.in[0] * g.in[1] * g.in[2];
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * g.out[0] * g.out[1] * g.out[2] * g.channels) {
    const OutputPosition p = position_of(g, i);
    const int64_t index = indices[i];
    bool in_window = false;
    for_each_tap(g, p, [&](int64_t tap) { in_window = in_window || tap == index; });
    if (!in_window) {
      atomicExch(bad_index, 1);
      continue;
    }
    atomicAdd(dx + (p.n * pixels + index) * g.channels + p.c, dy[i]);
  }
}

template <class T>
__global__ void avg_forward_kernel(PoolGeometry g, const T* x, T* y, bool count_include_pad) {
  const int64_t pixels = g.in[0] * g.in[1] * g.in[2];
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * g.out[0] * g.out[1] * g.out[2] * g.channels) {
    const OutputPosition p = position_of(g, i);
    const T* image = x + p.n * pixels * g.channels + p.c;
    double sum = 0.0;
    for_each_tap(g, p, [&](int64_t tap) { sum += image[tap * g.channels]; });
    y[i] = static_cast<T>(sum / static_cast<double>(divisor(g, p, count_include_pad)));
  }
}

template <class T>
__global__ void avg_backward_kernel(PoolGeometry g, const T* dy, T* dx, bool count_include_pad) {
  const int64_t pixels = g.in[0] * g.in[1] * g.in[2];
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * g.out[0] * g.out[1] * g.out[2] * g.channels) {
    const OutputPosition p = position_of(g, i);
    const T share = static_cast<T>(static_cast<double>(dy[i]) / static_cast<double>(divisor(g, p, count_include_pad)));
    T* image = dx + p.n * pixels * g.channels + p.c;
    for_each_tap(g, p, [&](int64_t tap) { atomicAdd(image + tap * g.channels, share); });
  }
}

}  // namespace

template <class T>
void max_pool_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t n = output_count(g);
  if (n == 0) return;
  max_forward_kernel<<<blocks_for(n), kThreads>>>(g, x, y, indices);
  check_launch("max_pool_forward");
}

template <class T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx) {
  fill_zero(dx, g.batch * input_pixels(g) * g.channels * static_cast<int64_t>(sizeof(T)));
  const int64_t n = output_count(g);
  if (n == 0) return;
  DeviceArray<int> bad_index(1);
  fill_zero(bad_index.get(), sizeof(int));
  max_backward_kernel<<<blocks_for(n), kThreads>>>(g, dy, indices, dx, bad_index.get());
  check_launch("max_pool_backward");
  int bad = 0;
  copy_to_host(&bad, bad_index.get(), sizeof bad);
  if (bad) throw std::invalid_argument("max_pool_backward: an index is not a position its window reads");
}

template <class T>
void avg_pool_forward(const PoolGeometry& g, const T* x, T* y, bool count_include_pad) {
  const int64_t n = output_count(g);
  if (n == 0) return;
  avg_forward_kernel<<<blocks_for(n), kThreads>>>(g, x, y, count_include_pad);
  check_launch("avg_pool_forward");
}

template <class T>
void avg_pool_backward(const PoolGeometry& g, const T* dy, T* dx, bool count_include_pad) {
  fill_zero(dx, g.batch * input_pixels(g) * g.channels * static_cast<int64_t>(sizeof(T)));
  const int64_t n = output_count(g);
  if (n == 0) return;
  avg_backward_kernel<<<blocks_for(n), kThreads>>>(g, dy, dx, count_include_pad);
  check_launch("avg_pool_backward");
}

#define CONVKIT_INSTANTIATE_CUDA_POOL(T)                                                                     \
  template void max_pool_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);                            \
  template void max_pool_backward<T>(const PoolGeometry&, const T*, const int64_t*, T*);                     \
  template void avg_pool_forward<T>(const PoolGeometry&, const T*, T*, bool);                                \
  template void avg_pool_backward<T>(const PoolGeometry&, const T*, T*, bool);
CONVKIT_INSTANTIATE_CUDA_POOL(float)
CONVKIT_INSTANTIATE_CUDA_POOL(double)
#undef CONVKIT_INSTANTIATE_CUDA_POOL

}  // namespace convkit::cuda
