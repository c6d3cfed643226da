// Max and average pooling by direct loops over windows: the driver lists each window's taps, and a pooling
// microkernel (kernels/pool_ukernel.h) reduces the window for all C channels at once.
//
// Shape legend (ops/pool.h): N batch, S input spatial (D, H, W), O output spatial, C channels; a pixel's
// "spatial index" is (d * S[1] + h) * S[2] + w, its element offset in an image that index times C.
//
//   max forward       y[n, o, c] = x[n, i*, c], i* = the first tap of window(o) holding the maximum (or NaN)
//   max backward      dx[n, i, c] = sum of dy[n, o, c] over the o whose window reads i and whose argmax is i
//   avg forward       y[n, o, c] = sum over the taps i of window(o) of x[n, i, c], / divisor(o)
//   avg backward      dx[n, i, c] = sum over the o whose window reads i of dy[n, o, c] / divisor(o)
//
// Threads and tiny pools: a pass wakes a thread only for every kMinElementsPerThread elements of x and y.
//
// Threads, races and determinism: forward passes split the output rows (n, od, oh) into contiguous shares;
// every y element is written once, from taps visited in window order, whatever the thread count. Backward
// passes split the input rows (n, d, h), and each dx element is the sum, in output order, of what the few
// windows that read it send it (AxisCovers lists them). Max pooling scatters: for each of its input rows a
// thread adds, output row by output row, each window's dy to the tap its index names (+0 to the others);
// the first output row to reach an input row sets the taps instead, so rows need no zeroing (2x2/2: each
// tap is written once). Average pooling gathers every dy divided by its window's divisor. No races, and the
// bits are the same for any thread count.
#include "ops/pool.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/checked_math.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit {
namespace {

using std::int64_t;

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
  const int64_t* spatial_indices() const { return indices_.data(); }

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

// For each input index of one axis, the output indices whose windows read it, in increasing order: the
// inverse of AxisWindows, which the backward gathers walk.
class AxisCovers {
 public:
  AxisCovers(const AxisWindows& a, int64_t in) : first_(static_cast<std::size_t>(in) + 1, 0) {
    for (int64_t o = 0; o < a.out(); ++o) {
      for (int64_t i = a.begin[o]; i < a.end[o]; i += a.step) ++first_[i + 1];
    }
    for (int64_t i = 0; i < in; ++i) first_[i + 1] += first_[i];
    outs_.resize(static_cast<std::size_t>(first_[in]));
    std::vector<int64_t> next(first_.begin(), first_.end() - 1);
    for (int64_t o = 0; o < a.out(); ++o) {
      for (int64_t i = a.begin[o]; i < a.end[o]; i += a.step) outs_[next[i]++] = o;
    }
    for (int64_t i = 0; i < in; ++i) least_ = std::min(least_, first_[i + 1] - first_[i]);
  }

  struct Range {
    const int64_t *first, *last;
    const int64_t* begin() const { return first; }
    const int64_t* end() const { return last; }
  };
  Range of(int64_t i) const { return {outs_.data() + first_[i], outs_.data() + first_[i + 1]}; }
  // Whether every index is read by some window.
  bool complete() const { return least_ >= 1; }

 private:
  std::vector<int64_t> first_, outs_;
  int64_t least_ = INT64_MAX;
};

std::array<AxisCovers, 3> axis_covers(const PoolGeometry& g) {
  return {AxisCovers(g.axes[0], g.in[0]), AxisCovers(g.axes[1], g.in[1]), AxisCovers(g.axes[2], g.in[2])};
}

// Average pooling's backward gather: threads split the input rows (n, d, h). Each thread makes its own
// visitor with make_visitor(); visitor(n, spatial index, outputs) then runs for every input pixel of the
// thread's share, in order, with the spatial indices of the output pixels whose windows read that pixel,
// in output order.
template <class MakeVisitor>
void for_each_input_pixel(const PoolGeometry& g, MakeVisitor&& make_visitor) {
  const std::array<int64_t, 3> out = out_extent(g);
  const std::array<AxisCovers, 3> covers = axis_covers(g);
  const int64_t rows = g.batch * g.in[0] * g.in[1];
  if (rows == 0) return;
  run_parallel(pass_threads(g, rows), [&](int tid, int team) {
    auto visit = make_visitor();
    std::vector<int64_t> output_rows;  // the output rows (od, oh) whose windows read this row, as od * O1 + oh
    std::vector<int64_t> outputs;
    for (int64_t row = share_start(rows, tid, team); row < share_start(rows, tid + 1, team); ++row) {
      const int64_t n = row / (g.in[0] * g.in[1]), d = row / g.in[1] % g.in[0], h = row % g.in[1];
      output_rows.clear();
      for (const int64_t od : covers[0].of(d)) {
        for (const int64_t oh : covers[1].of(h)) output_rows.push_back(od * out[1] + oh);
      }
      for (int64_t w = 0; w < g.in[2]; ++w) {
        outputs.clear();
        for (const int64_t output_row : output_rows) {
          for (const int64_t ow : covers[2].of(w)) outputs.push_back(output_row * out[2] + ow);
        }
        visit(n, (d * g.in[1] + h) * g.in[2] + w, outputs);
      }
    }
  });
}

bool is_tap(const AxisWindows& a, int64_t o, int64_t i) {
  return i >= a.begin[o] && i < a.end[o] && (i - a.begin[o]) % a.step == 0;
}

// Throws std::invalid_argument naming the first index (in output order) that is not a tap of its window.
[[noreturn]] void throw_first_index_outside_window(const PoolGeometry& g, const int64_t* indices) {
  const std::array<int64_t, 3> out = out_extent(g);
  const int64_t in_pixels = pixels(g.in, "pool input size");
  for (int64_t n = 0; n < g.batch; ++n) {
    for_each_image_output(g, [&](const std::array<int64_t, 3>& o, int64_t offset) {
      for (int64_t k = 0; k < g.channels; ++k) {
        const int64_t i = indices[n * pixels(out, "pool output size") * g.channels + offset + k];
        const bool inside = i >= 0 && i < in_pixels && is_tap(g.axes[0], o[0], i / (g.in[1] * g.in[2])) &&
                            is_tap(g.axes[1], o[1], i / g.in[2] % g.in[1]) && is_tap(g.axes[2], o[2], i % g.in[2]);
        if (!inside) {
          throw std::invalid_argument("max_pool_backward: index " + std::to_string(i) + " (image " +
                                      std::to_string(n) + ", channel " + std::to_string(k) +
                                      ") is not a position its window reads; pass the indices max_pool returned");
        }
      }
    });
  }
  throw std::logic_error("max_pool_backward: gathered fewer indices than the output holds, yet all are valid");
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
  const PoolUkernel<T>& ukernel = selected_pool_ukernel<T>();
  const int64_t c = g.channels, image = pixels(g.in, "pool input size") * c;
  for_each_output_pixel(g, [&](int64_t n, const std::array<int64_t, 3>& o, int64_t offset) {
    thread_local WindowTaps<T> window;
    window.list(g, o, x + n * image);
    ukernel.max(c, window.count(), window.sources(), window.spatial_indices(), y + offset,
                indices ? indices + offset : nullptr);
  });
}

template <class T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx) {
  check_pool_geometry(g);
  const PoolUkernel<T>& ukernel = selected_pool_ukernel<T>();
  const std::array<int64_t, 3> out = out_extent(g);
  const std::array<AxisCovers, 3> covers = axis_covers(g);
  const int64_t c = g.channels, row_elements = g.in[2] * c, in_rows = g.in[0] * g.in[1];
  const int64_t out_row_elements = out[2] * c, out_image = out[0] * out[1] * out_row_elements;
  const PoolRowWindows windows{out[2], g.axes[2].begin.data(), g.axes[2].end.data(), g.axes[2].step};
  // Contiguous windows reading every column: the first output row to reach an input row sets its taps
  // rather than adding to them, so the row needs no zeroing (a fill of each row first cost a quarter of
  // the pass on 3x3/2).
  const bool settable = g.axes[2].step == 1 && covers[2].complete();
  const int64_t rows = g.batch * in_rows;
  std::atomic<int64_t> total{0};
  run_parallel(pass_threads(g, rows), [&](int tid, int team) {
    int64_t matches = 0;
    for (int64_t row = share_start(rows, tid, team); row < share_start(rows, tid + 1, team); ++row) {
      const int64_t n = row / in_rows, d = row / g.in[1] % g.in[0], h = row % g.in[1];
      T* dx_row = dx + row * row_elements;
      const AxisCovers::Range depth = covers[0].of(d), height = covers[1].of(h);
      bool fresh = settable && depth.begin() != depth.end() && height.begin() != height.end();
      if (!fresh) std::fill(dx_row, dx_row + row_elements, T(0));
      for (const int64_t od : depth) {
        for (const int64_t oh : height) {
          const int64_t offset = n * out_image + (od * out[1] + oh) * out_row_elements;
          matches += ukernel.max_scatter(c, windows, dx_row, (d * g.in[1] + h) * g.in[2], dy + offset,
                                         indices + offset, fresh);
          fresh = false;
        }
      }
    }
    total += matches;
  });
  // Each output element's index names one tap of its window, so it matched exactly once; otherwise report it.
  if (total.load() != g.batch * out_image) throw_first_index_outside_window(g, indices);
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
  const int64_t c = g.channels, in_image = pixels(g.in, "pool input size") * c;
  const int64_t out_image = pixels(out_extent(g), "pool output size") * c;
  std::vector<T> divisors;  // per output pixel (its spatial index), what its window's sum is divided by
  divisors.reserve(static_cast<std::size_t>(out_image / c));
  for_each_image_output(g, [&](const std::array<int64_t, 3>& o, int64_t) {
    divisors.push_back(static_cast<T>(divisor(g, o, count_include_pad)));
  });
  for_each_input_pixel(g, [&] {
    return [&, grads = std::vector<const T*>(), window_divisors = std::vector<T>()](
               int64_t n, int64_t spatial, const std::vector<int64_t>& outputs) mutable {
      grads.clear();
      window_divisors.clear();
      for (const int64_t o : outputs) grads.push_back(dy + n * out_image + o * c), window_divisors.push_back(divisors[o]);
      ukernel.avg_gather(c, static_cast<int64_t>(outputs.size()), grads.data(), window_divisors.data(),
                         dx + n * in_image + spatial * c);
    };
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
