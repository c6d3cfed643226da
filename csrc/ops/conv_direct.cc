// Direct convolution for few channels, driven like the depthwise kernels (ops/depthwise.cc): padding is
// index mapping (ops/tap_map.h), and one microkernel call covers a run of one destination row whose W
// taps shift uniformly, with the row's D x H taps as "rows" and the run's W taps as "columns".
//
// Shape legend: N batch, C = in_channels, F = out_channels, K = kernel[0..2], taps = prod(K).
//
//   forward          y[n, o, f]  = act(bias[f] + sum_taps sum_c x[n, i(o, tap), c] * w[tap, c, f])
//   backward weights dw[tap, c, f] = sum over n, o of x[n, i(o, tap), c] * dy[n, o, f]     db[f] = sum dy
//
// Backward data stays with im2col + GEMM and col2im (conv.cc): two direct designs measured slower on
// LeNet's conv2 (64x14x14x6 -> 16, 5x5; 1 thread, CPU time): gathering dy with the transposed kernel,
// vectorised over the 6 input channels (2.3 vs 1.1 ms), and the forward kernel on the flipped kernel
// (1.5 vs 1.1 ms: its 400-term sums per output pixel run 6 of 8 lanes wide, from a padded copy of dy).
// The kernels read weights packed per tap as (C, w_ld) with w_ld = F rounded up to kDconvRowAlign and
// zeros past F, so that they load whole vectors (a few KiB, packed per call).
//
// Threads and determinism: forward splits the output rows (n, d, h) into contiguous shares; every output
// element is written once by the one call that covers it, its sum in an
// order fixed by the geometry. Backward weights sums fixed blocks of rows (kRowBlockPixels output pixels,
// whatever the thread count) into per-block partial sums, which are added in block order in double at
// the end. So every result is bit-identical for any thread count. Work below kMinWorkPerThread
// multiply-adds per thread runs on fewer threads (one for a tiny layer): opening an OpenMP team costs
// more than such work, and a team waits a whole time slice for a descheduled member on a loaded machine.
#include "ops/conv_direct.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "core/workspace.h"
#include "kernels/registry.h"
#include "ops/im2col.h"
#include "ops/pixel_layout.h"
#include "ops/tap_map.h"
#include "ops/tap_table.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kMaxChannels = 16;
constexpr int64_t kMaxPaddedExtra = 64;  // pixels a padded row may add beyond twice x's width
constexpr int64_t kRowBlockPixels = 2048;
constexpr int64_t kPixelsPerCall = 256;  // backward weights: a float sum over at most this many pixels
constexpr int64_t kMinWorkPerThread = int64_t{1} << 20;  // multiply-adds (~0.1-0.2 ms of one core)

// The width of the rows the output's W taps span: from the first padded column to the last one read, or
// -1 when that does not fit int64 (absurd strides or dilations).
int64_t tap_span(const ConvGeometry& g) {
  int64_t a, b, span;
  if (__builtin_mul_overflow(g.out[2] - 1, g.stride[2], &a) || __builtin_mul_overflow(g.kernel[2] - 1, g.dilation[2], &b) ||
      __builtin_add_overflow(a, b, &span) || __builtin_add_overflow(span, int64_t{1}, &span)) {
    return -1;
  }
  return span;
}

// The images the kernels read: x itself when every W tap of every output lies inside x, else each image
// copied with its W padding written out (zeros, or the values the padding mode maps to), so that every
// output pixel of a row has all K[2] W taps and a row is one microkernel call instead of a long interior
// run plus one short run per edge pixel. D and H padding need no copy: a row's taps simply leave out the
// rows of zeros, or point at the mapped rows. Each thread pads the images it reads into its own buffer.
template <class T>
class WidthPaddedSource {
 public:
  WidthPaddedSource(const ConvGeometry& g, const T* x)
      : g_(g), x_(x), width_(tap_span(g)) {
    padded_ = g.pad_before[2] > 0 || width_ > g.in[2];
    if (!padded_) width_ = g.in[2];
    layout_ = {1, {g.in[0], g.in[1], width_}, g.in_channels};
  }

  // The layout of one image as the kernels read it.
  const PixelLayout& layout() const { return layout_; }
  int64_t width() const { return width_; }

  // The scratch bytes image() needs per thread: one padded image, or none when x is read in place.
  int64_t buffer_bytes() const {
    return padded_ ? checked_mul(layout_.image_elements(), int64_t(sizeof(T)), "conv padded image") : 0;
  }

  // Image n, read through `buffer` (this thread's, covered by `charge` of buffer_bytes()), which holds the
  // last image padded into it.
  const T* image(int64_t n, AlignedBuffer& buffer, const WorkspaceCharge& charge, int64_t& buffered) const {
    const int64_t elements = layout_.image_elements();
    if (!padded_) return x_ + n * elements;
    T* const padded = buffer.reserve_elements<T>(charge);
    if (buffered == n) return padded;
    const int64_t c = g_.in_channels, before = g_.pad_before[2];
    const int64_t inside = std::clamp<int64_t>(g_.in[2], 0, width_ - before);  // x's own pixels
    const T* const image = x_ + n * g_.in[0] * g_.in[1] * g_.in[2] * c;
    for (int64_t row = 0; row < g_.in[0] * g_.in[1]; ++row) {
      const T* const src = image + row * g_.in[2] * c;
      T* const dst = padded + row * width_ * c;
      std::copy_n(src, inside * c, dst + before * c);
      for (int64_t i = 0; i < width_; ++i) {  // the padding
        if (i == before) i += inside;
        if (i == width_) break;
        const int64_t source = source_index(i - before, g_.in[2], g_.mode);
        if (source < 0) std::fill_n(dst + i * c, c, T(0));
        else std::copy_n(src + source * c, c, dst + i * c);
      }
    }
    buffered = n;
    return padded;
  }

 private:
  const ConvGeometry& g_;
  const T* x_;
  int64_t width_;
  bool padded_;
  PixelLayout layout_;
};

// The forward taps: D and H from the geometry, W on the padded rows (every output pixel of a row has the
// same W taps, so a row is one run).
struct Plan {
  AxisTaps depth, height, width;
  std::vector<AxisRun> runs;
  std::array<int64_t, 3> kernel;

  static Plan forward(const ConvGeometry& g, int64_t padded_width) {
    ConvGeometry on_padded = g;
    on_padded.in[2] = padded_width;
    on_padded.pad_before[2] = 0;
    Plan p{AxisTaps::forward(g, 0), AxisTaps::forward(g, 1), AxisTaps::forward(on_padded, 2), {}, g.kernel};
    p.runs = find_runs(p.width, 1);
    return p;
  }
};

int64_t kernel_taps(const ConvGeometry& g) { return g.kernel[0] * g.kernel[1] * g.kernel[2]; }

// Threads for `work` multiply-adds split into `parts` independent pieces.
int threads_for(int64_t work, int64_t parts) {
  return static_cast<int>(std::clamp<int64_t>(std::min(work / kMinWorkPerThread, parts), 1, num_threads()));
}

// The bytes of w packed by pack_weights.
template <class T>
int64_t packed_weights_bytes(const ConvGeometry& g, int64_t w_ld) {
  const int64_t rows = checked_mul(kernel_taps(g), g.in_channels, "conv packed weights");
  return checked_mul(checked_mul(rows, w_ld, "conv packed weights"), int64_t(sizeof(T)), "conv packed weights");
}

// w (taps, C, F) packed per tap as C rows of w_ld values, zeros past F (the caller charges
// packed_weights_bytes to the workspace).
template <class T>
std::vector<T> pack_weights(const ConvGeometry& g, const T* w, int64_t w_ld) {
  const int64_t rows = kernel_taps(g) * g.in_channels;
  std::vector<T> packed(static_cast<size_t>(rows * w_ld), T(0));
  for (int64_t r = 0; r < rows; ++r) std::copy_n(w + r * g.out_channels, g.out_channels, packed.data() + r * w_ld);
  return packed;
}

}  // namespace

bool takes_direct_conv(const ConvGeometry& g) {
  // A padded row much wider than x's (a huge padding, stride or dilation) would cost more to copy than
  // the convolution: im2col reads such layers in place.
  const int64_t span = tap_span(g);
  return g.groups == 1 && g.in_channels <= kMaxChannels && g.out_channels <= kMaxChannels && span >= 0 &&
         span <= 2 * g.in[2] + kMaxPaddedExtra;
}

template <class T>
void direct_conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                         T negative_slope) {
  const DconvUkernel<T>& ukernel = selected_dconv_ukernel<T>();
  const int64_t c = g.in_channels, f = g.out_channels, w_ld = round_up(f, kDconvRowAlign);
  const WorkspaceCharge packed_charge(packed_weights_bytes<T>(g, w_ld), "conv packed weights");
  const std::vector<T> packed = pack_weights(g, w, w_ld);
  const WidthPaddedSource<T> source(g, x);
  const Plan plan = Plan::forward(g, source.width());
  const PixelLayout to{g.batch, g.out, f};
  const int64_t rows = to.rows();
  if (rows == 0) return;
  const int threads = threads_for(checked_mul(rows, g.out[2] * kernel_taps(g) * c * f, "conv work"), rows);
  std::vector<TapTable<T, const T>> tables(threads, TapTable<T, const T>(plan));
  run_parallel(threads, [&](int tid, int team) {
    thread_local AlignedBuffer buffer;
    const WorkspaceCharge buffer_charge(source.buffer_bytes(), "conv padded image");
    int64_t buffered = -1;
    TapTable<T, const T>& table = tables[tid];
    for (int64_t row = share_start(rows, tid, team); row < share_start(rows, tid + 1, team); ++row) {
      const auto [n, d, h] = to.coordinates(row);
      table.set_rows(plan, d, h, source.image(n, buffer, buffer_charge, buffered), source.layout(), packed.data(), c * w_ld);
      T* const dst_row = y + row * to.row_elements();
      for (const AxisRun& run : plan.runs) {
        table.set_columns(plan, run, c, c * w_ld);
        const DconvRun where{run.count, c, f, pixel_stride(run, run.source_step, c), pixel_stride(run, 1, f), w_ld};
        ukernel.forward(where, table.taps(), bias, activation, negative_slope, dst_row + run.first * f);
      }
    }
  });
}

template <class T>
void direct_conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db) {
  const DconvUkernel<T>& ukernel = selected_dconv_ukernel<T>();
  const int64_t c = g.in_channels, f = g.out_channels, w_ld = round_up(f, kDconvRowAlign);
  const WidthPaddedSource<T> source(g, x);
  const Plan plan = Plan::forward(g, source.width());
  const PixelLayout to{g.batch, g.out, f};
  const int64_t rows = to.rows();

  // Each block of rows has its partial sums: taps * C rows of dw, then db's row, w_ld wide.
  const int64_t block_rows = std::max<int64_t>(1, kRowBlockPixels / g.out[2]);
  const int64_t blocks = ceil_div(rows, block_rows);
  const int64_t sum_rows = kernel_taps(g) * c + 1;
  const int64_t block_elements = checked_mul(sum_rows, w_ld, "conv weight-gradient sums");
  const int64_t elements = checked_mul(std::max<int64_t>(blocks, 1), block_elements, "conv weight-gradient sums");
  const WorkspaceCharge partials_charge(checked_mul(elements, int64_t(sizeof(T)), "conv weight-gradient sums"),
                                        "conv weight-gradient sums");
  std::vector<T> partials(static_cast<size_t>(elements), T(0));

  const int64_t work_per_block = block_rows * g.out[2] * kernel_taps(g) * c * f;
  const int threads = threads_for(checked_mul(blocks, work_per_block, "conv work"), blocks);
  std::vector<TapTable<T, T>> tables(threads, TapTable<T, T>(plan));
  run_parallel(threads, [&](int tid, int team) {
    thread_local AlignedBuffer buffer;
    const WorkspaceCharge buffer_charge(source.buffer_bytes(), "conv padded image");
    int64_t buffered = -1;
    TapTable<T, T>& table = tables[tid];
    for (int64_t block = share_start(blocks, tid, team); block < share_start(blocks, tid + 1, team); ++block) {
      T* const partial = partials.data() + block * block_elements;
      T* const partial_db = db ? partial + (sum_rows - 1) * w_ld : nullptr;
      for (int64_t row = block * block_rows; row < std::min(rows, (block + 1) * block_rows); ++row) {
        const auto [n, d, h] = to.coordinates(row);
        const T* const image = source.image(n, buffer, buffer_charge, buffered);
        const T* const dy_row = dy + row * to.row_elements();
        for (const AxisRun& run : plan.runs) {
          table.set_rows(plan, d, h, image, source.layout(), partial, c * w_ld);
          table.set_columns(plan, run, c, c * w_ld);
          const int64_t src_stride = pixel_stride(run, run.source_step, c), dst_stride = pixel_stride(run, 1, f);
          for (int64_t j = 0; j < run.count; j += kPixelsPerCall) {
            const int64_t pixels = std::min(kPixelsPerCall, run.count - j);
            ukernel.backward_weights({pixels, c, f, src_stride, dst_stride, w_ld}, table.taps(),
                                     dy_row + (run.first + j) * f, partial_db);
            table.advance_sources(pixels * src_stride);
          }
        }
      }
    }
  });

  // The blocks' partial sums, added in block order: the same sums whatever the thread count.
  for (int64_t s = 0; s < sum_rows; ++s) {
    T* const out = s + 1 < sum_rows ? dw + s * f : db;
    if (!out) continue;
    for (int64_t k = 0; k < f; ++k) {
      double sum = 0.0;
      for (int64_t block = 0; block < blocks; ++block) sum += partials[(block * sum_rows + s) * w_ld + k];
      out[k] = static_cast<T>(sum);
    }
  }
}

#define CONVKIT_INSTANTIATE_DIRECT_CONV(T)                                                                      \
  template void direct_conv_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, Activation, T);  \
  template void direct_conv_backward_weights<T>(const ConvGeometry&, const T*, const T*, T*, T*);
CONVKIT_INSTANTIATE_DIRECT_CONV(float)
CONVKIT_INSTANTIATE_DIRECT_CONV(double)
#undef CONVKIT_INSTANTIATE_DIRECT_CONV

}  // namespace convkit
