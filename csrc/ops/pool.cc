// Max and average pooling by direct loops over windows: the driver lists each window's taps, and a pooling
// microkernel (kernels/pool_ukernel.h) reduces the window for all C channels at once.
//
// Shape legend (ops/pool.h): N batch, S input spatial (D, H, W), O output spatial, C channels; a pixel's
// "spatial index" is (d * S[1] + h) * S[2] + w, its element offset in an image that index times C.
//
//   max forward       y[n, o, c] = x[n, i*, c], i* = the first tap of window(o) holding the maximum (or NaN)
//   max backward      dx[n, i, c] = sum of dy[n, o, c] over the o whose argmax is i
//   avg forward       y[n, o, c] = sum over the taps i of window(o) of x[n, i, c], / divisor(o)
//   avg backward      dx[n, i, c] = sum over the o whose window holds i of dy[n, o, c] / divisor(o)
//
// Threads and tiny pools: a pass wakes a thread only for every kMinElementsPerThread elements of x and y.
//
// Threads, races and determinism: forward passes split the output rows (n, od, oh) into contiguous shares;
// every y element is written once, from taps visited in window order, whatever the thread count. Backward
// passes scatter, and two windows can share an input pixel, so threads own (image, channel block) pairs
// instead: every dx element is only ever written by the thread that owns its image and channel, which adds
// the contributions in increasing output order. No races, and the same bits for any thread count.
#include "ops/pool.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/checked_math.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kChannelBlock = 16;  // channels a backward thread owns at a time: one 64-byte line of floats
// Waking a thread team costs microseconds, milliseconds on a loaded machine: a thread gets at least this
// many elements of x and y to read or write. Tiny pools run on one thread.
constexpr int64_t kMinElementsPerThread = 16384;

int64_t pixels(const std::array<int64_t, 3>& extent, const char* what) {
  return checked_mul(checked_mul(extent[0], extent[1], what), extent[2], what);
}

std::array<int64_t, 3> out_extent(const PoolGeometry& g) { return {g.axes[0].out(), g.axes[1].out(), g.axes[2].out()}; }

// Calls visit(spatial index) for the input taps of output pixel o = (od, oh, ow), in window order.
template <class Visit>
void for_each_tap(const PoolGeometry& g, const std::array<int64_t, 3>& o, Visit&& visit) {
  const AxisWindows &depth = g.axes[0], &height = g.axes[1], &width = g.axes[2];
  for (int64_t d = depth.begin[o[0]]; d < depth.end[o[0]]; d += depth.step) {
    for (int64_t h = height.begin[o[1]]; h < height.end[o[1]]; h += height.step) {
      const int64_t row = (d * g.in[1] + h) * g.in[2];
      for (int64_t w = width.begin[o[2]]; w < width.end[o[2]]; w += width.step) visit(row + w);
    }
  }
}

// Threads for a pass over `items` units of work (rows, blocks) that touches every element of x and y once.
int pass_threads(const PoolGeometry& g, int64_t items) {
  const int64_t elements = checked_add(g.batch * g.channels * pixels(g.in, "pool input size"),
                                       g.batch * g.channels * pixels(out_extent(g), "pool output size"), "pool size");
  const int64_t worth_it = std::max<int64_t>(1, elements / kMinElementsPerThread);
  return static_cast<int>(std::min<int64_t>({num_threads(), items, worth_it}));
}

// The most input taps any window reads.
int64_t max_window_taps(const PoolGeometry& g) {
  int64_t taps = 1;
  for (const AxisWindows& a : g.axes) {
    int64_t most = 0;
    for (int64_t o = 0; o < a.out(); ++o) most = std::max(most, a.valid_count(o));
    taps = checked_mul(taps, most, "pool window taps");
  }
  return taps;
}

// One window's taps as the microkernels take them: pointers to each tap's pixel (channel 0) in window
// order, and each tap's spatial index.
template <class T>
class WindowTaps {
 public:
  void list(const PoolGeometry& g, const std::array<int64_t, 3>& o, const T* image) {
    sources_.clear();
    indices_.clear();
    for_each_tap(g, o, [&](int64_t i) {
      sources_.push_back(image + i * g.channels);
      indices_.push_back(i);
    });
  }
  int64_t count() const { return static_cast<int64_t>(indices_.size()); }
  const T* const* sources() const { return sources_.data(); }
  int64_t spatial_index(int64_t ordinal) const { return indices_[ordinal]; }

 private:
  std::vector<const T*> sources_;
  std::vector<int64_t> indices_;
};

// What average pooling divides window o's sum by.
int64_t divisor(const PoolGeometry& g, const std::array<int64_t, 3>& o, bool count_include_pad) {
  int64_t count = 1;
  for (int a = 0; a < 3; ++a) count *= count_include_pad ? g.axes[a].padded_count[o[a]] : g.axes[a].valid_count(o[a]);
  return count;
}

// Forward passes: threads split the output rows (n, od, oh); pixel(n, o, y offset) runs for every
// output pixel of the thread's share, in order.
template <class Pixel>
void for_each_output_pixel(const PoolGeometry& g, Pixel&& pixel) {
  const std::array<int64_t, 3> out = out_extent(g);
  const int64_t rows = g.batch * out[0] * out[1];
  if (rows == 0) return;
  const int threads = pass_threads(g, rows);
  run_parallel(threads, [&](int tid, int team) {
    for (int64_t row = share_start(rows, tid, team); row < share_start(rows, tid + 1, team); ++row) {
      const int64_t n = row / (out[0] * out[1]);
      for (int64_t ow = 0; ow < out[2]; ++ow) {
        pixel(n, std::array<int64_t, 3>{row / out[1] % out[0], row % out[1], ow}, (row * out[2] + ow) * g.channels);
      }
    }
  });
}

// Backward passes: threads own (image, channel block) pairs; block(n, c0, c1) zeroes and fills dx for
// image n, channels [c0, c1).
template <class Block>
void for_each_image_channel_block(const PoolGeometry& g, Block&& block) {
  const int64_t blocks_per_image = ceil_div(g.channels, kChannelBlock);
  const int64_t items = g.batch * blocks_per_image;
  if (items == 0) return;
  const int threads = pass_threads(g, items);
  run_parallel(threads, [&](int tid, int team) {
    for (int64_t item = share_start(items, tid, team); item < share_start(items, tid + 1, team); ++item) {
      const int64_t c0 = item % blocks_per_image * kChannelBlock;
      block(item / blocks_per_image, c0, std::min(g.channels, c0 + kChannelBlock));
    }
  });
}

// Calls visit(o, y offset of o within the image) for every output pixel of an image, in order.
template <class Visit>
void for_each_image_output(const PoolGeometry& g, Visit&& visit) {
  const std::array<int64_t, 3> out = out_extent(g);
  int64_t offset = 0;
  for (int64_t od = 0; od < out[0]; ++od) {
    for (int64_t oh = 0; oh < out[1]; ++oh) {
      for (int64_t ow = 0; ow < out[2]; ++ow, offset += g.channels) visit(std::array<int64_t, 3>{od, oh, ow}, offset);
    }
  }
}

void check_axis(const AxisWindows& a, int64_t in, int axis) {
  const std::string where = "pool axis " + std::to_string(axis) + ": ";
  // step <= in keeps `index += step` from overflowing (a larger step reads one tap, as step == in does).
  if (a.out() < 1 || a.end.size() != a.begin.size() || a.padded_count.size() != a.begin.size() || a.step < 1 ||
      a.step > in) {
    throw std::invalid_argument(where + "windows need begin, end and padded_count of one common length >= 1 and "
                                "1 <= step <= the input extent");
  }
  for (int64_t o = 0; o < a.out(); ++o) {
    if (a.begin[o] < 0 || a.begin[o] >= a.end[o] || a.end[o] > in || a.padded_count[o] < a.valid_count(o)) {
      throw std::invalid_argument(where + "window " + std::to_string(o) + " [" + std::to_string(a.begin[o]) + ", " +
                                  std::to_string(a.end[o]) + ") is not a non-empty range of the input's " +
                                  std::to_string(in) + " samples, or counts fewer padded taps than it reads");
    }
  }
}

}  // namespace

void check_pool_geometry(const PoolGeometry& g) {
  if (g.batch < 0 || g.channels < 1 || std::any_of(g.in.begin(), g.in.end(), [](int64_t n) { return n < 1; })) {
    throw std::invalid_argument("pool: batch must be >= 0 and channels and input extents >= 1");
  }
  for (int a = 0; a < 3; ++a) check_axis(g.axes[a], g.in[a], a);
  checked_mul(checked_mul(g.batch, pixels(g.in, "pool input size"), "pool input size"), g.channels, "pool input size");
  checked_mul(checked_mul(g.batch, pixels(out_extent(g), "pool output size"), "pool output size"), g.channels,
              "pool output size");
}

template <class T>
void max_pool_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  check_pool_geometry(g);
  using Ordinal = TapOrdinal<T>;
  if (max_window_taps(g) > std::numeric_limits<Ordinal>::max()) {
    throw std::length_error("max_pool: a window of " + std::to_string(max_window_taps(g)) +
                            " taps is more than this dtype's argmax tracking supports");
  }
  const PoolUkernel<T>& ukernel = selected_pool_ukernel<T>();
  const int64_t c = g.channels, image = pixels(g.in, "pool input size") * c;
  for_each_output_pixel(g, [&](int64_t n, const std::array<int64_t, 3>& o, int64_t offset) {
    thread_local WindowTaps<T> window;
    thread_local std::vector<Ordinal> ordinals;  // the argmax of each channel, as a tap ordinal
    window.list(g, o, x + n * image);
    ordinals.resize(c);
    ukernel.max(c, window.count(), window.sources(), y + offset, ordinals.data());
    if (indices) {
      for (int64_t k = 0; k < c; ++k) indices[offset + k] = window.spatial_index(ordinals[k]);
    }
  });
}

template <class T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx) {
  check_pool_geometry(g);
  const int64_t c = g.channels, in_pixels = pixels(g.in, "pool input size");
  const int64_t out_image = pixels(out_extent(g), "pool output size") * c;
  for_each_image_channel_block(g, [&](int64_t n, int64_t c0, int64_t c1) {
    T* dxn = dx + n * in_pixels * c;
    for (int64_t i = 0; i < in_pixels; ++i) std::fill(dxn + i * c + c0, dxn + i * c + c1, T(0));
    const T* dyn = dy + n * out_image;
    const int64_t* indices_n = indices + n * out_image;
    for (int64_t offset = 0; offset < out_image; offset += c) {
      for (int64_t k = c0; k < c1; ++k) {
        const int64_t i = indices_n[offset + k];
        if (i < 0 || i >= in_pixels) {
          throw std::invalid_argument("max_pool_backward: indices holds " + std::to_string(i) + ", which" + " is outside the input's " +
                                      std::to_string(in_pixels) + " spatial positions");
        }
        dxn[i * c + k] += dyn[offset + k];
      }
    }
  });
}

template <class T>
void avg_pool_forward(const PoolGeometry& g, const T* x, T* y, bool count_include_pad) {
  check_pool_geometry(g);
  const PoolUkernel<T>& ukernel = selected_pool_ukernel<T>();
  const int64_t c = g.channels, image = pixels(g.in, "pool input size") * c;
  for_each_output_pixel(g, [&](int64_t n, const std::array<int64_t, 3>& o, int64_t offset) {
    thread_local WindowTaps<T> window;
    window.list(g, o, x + n * image);
    T* sum = y + offset;
    ukernel.sum(c, window.count(), window.sources(), sum);
    const T count = static_cast<T>(divisor(g, o, count_include_pad));
    for (int64_t k = 0; k < c; ++k) sum[k] /= count;
  });
}

template <class T>
void avg_pool_backward(const PoolGeometry& g, const T* dy, T* dx, bool count_include_pad) {
  check_pool_geometry(g);
  const PoolUkernel<T>& ukernel = selected_pool_ukernel<T>();
  const int64_t c = g.channels, in_pixels = pixels(g.in, "pool input size");
  const int64_t out_image = pixels(out_extent(g), "pool output size") * c;
  for_each_image_channel_block(g, [&](int64_t n, int64_t c0, int64_t c1) {
    T* dxn = dx + n * in_pixels * c;
    for (int64_t i = 0; i < in_pixels; ++i) std::fill(dxn + i * c + c0, dxn + i * c + c1, T(0));
    const T* dyn = dy + n * out_image;
    T share[kChannelBlock];
    for_each_image_output(g, [&](const std::array<int64_t, 3>& o, int64_t offset) {
      const T count = static_cast<T>(divisor(g, o, count_include_pad));
      for (int64_t k = c0; k < c1; ++k) share[k - c0] = dyn[offset + k] / count;
      for_each_tap(g, o, [&](int64_t i) { ukernel.add(c1 - c0, share, dxn + i * c + c0); });
    });
  });
}

#define CONVKIT_INSTANTIATE_POOL(T)                                                        \
  template void max_pool_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);          \
  template void max_pool_backward<T>(const PoolGeometry&, const T*, const int64_t*, T*);   \
  template void avg_pool_forward<T>(const PoolGeometry&, const T*, T*, bool);              \
  template void avg_pool_backward<T>(const PoolGeometry&, const T*, T*, bool);
CONVKIT_INSTANTIATE_POOL(float)
CONVKIT_INSTANTIATE_POOL(double)
#undef CONVKIT_INSTANTIATE_POOL

}  // namespace convkit
