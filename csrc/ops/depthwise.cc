// Depthwise convolution by direct kernels: no im2col, each pass reads its inputs and writes its output once.
//
// Shape legend: N batch, S = in[0..2] input spatial (D, H, W), O = out[0..2] output spatial, K = kernel[0..2],
// C = in_channels = groups, m = out_channels / C the channel multiplier, F = C * m. Output channel
// f = c*m + q reads input channel c only; w is (K, 1, F), i.e. one row of F weights per kernel offset (tap).
//
//   forward          y[n, o, f]  = act(bias[f] + sum_taps x[n, i(o, tap), c] * w[tap, f])
//   backward data    dx[n, i, c] = sum over the (o, tap) that read i, and q, of dy[n, o, f] * w[tap, f]
//   backward weights dw[tap, f]  = sum over n, o of x[n, i(o, tap), c] * dy[n, o, f]      db[f] = sum dy
//
// Padding is index mapping (ops/tap_map.h): per axis, every destination index lists the (source index,
// kernel offset) pairs that feed it, zeros left out. Backward data is a gather too: each input pixel lists
// the outputs that read it, reflected and wrapped copies included, so that every dx element is written by
// one kernel call and never accumulated from two places. Along W, destinations whose taps shift uniformly
// form a run (the whole interior, per residue class of the stride for backward data). One microkernel
// call (kernels/dwconv_ukernel.h) covers a run of one destination row for all channels: its taps are
// the row's D x H taps ("rows", one source row pointer each) times the run's W taps ("columns", offsets).
//
// Threads, races and determinism: forward and backward data split the destination rows (n, d, h) into
// contiguous shares, one per thread. Every y or dx element is written once, by the one call that covers
// it, and its taps and their order depend only on the geometry: no races, and the same bits for any
// thread count. Backward weights cannot split rows that way (two threads would add into one dw), so it
// shares out a grid of tiles fixed by the geometry alone, blocks of rows x blocks of channels: each tile
// sums its products in a fixed order (a few pixels in registers, then float partial sums of a few hundred
// pixels, then its row block's double total), in memory only its thread writes (whole cache lines), and
// the row blocks' totals are added in block order at the end. The rounding error grows with those block
// lengths, not with N * prod(O), and no sum depends on how many threads there were or who did what.
// Blocks of whole rows of all channels (up to kChannelBlockBytes per pixel) keep each thread's reads
// streaming through memory, which a split of the channels alone would cut into strided pieces. Within a
// tile, a W run shorter than the rows left in its height run (image edges, small maps) is summed down
// those rows, one call per column of pixels, so that few calls add only a pixel or two into the sums.
#include "ops/depthwise.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "core/workspace.h"
#include "kernels/registry.h"
#include "ops/pixel_layout.h"
#include "ops/tap_map.h"
#include "ops/tap_table.h"

namespace convkit {
namespace {

using std::int64_t;

// Backward weights shares out a grid of tiles: blocks of rows of about kRowBlockPixels output pixels x
// blocks of kChannelBlockBytes of channels per pixel (whole pixels in the common layers, so that a
// thread's reads stream). A tile's float sums join a double total every kPixelsPerPartialSum pixels.
constexpr int64_t kRowBlockPixels = 2048;
constexpr int64_t kChannelBlockBytes = 512;
constexpr int64_t kPixelsPerPartialSum = 256;
constexpr int64_t kCacheLine = 64;  // bytes

// The taps of one direction of a depthwise convolution: each axis's, and the runs along W.
struct DepthwisePlan {
  AxisTaps depth, height, width;
  std::vector<AxisRun> runs;
  std::array<int64_t, 3> kernel;

  static DepthwisePlan make(const ConvGeometry& g, AxisTaps (*axis_taps)(const ConvGeometry&, int), int64_t step) {
    DepthwisePlan p{axis_taps(g, 0), axis_taps(g, 1), axis_taps(g, 2), {}, g.kernel};
    p.runs = find_runs(p.width, step);
    return p;
  }
  static DepthwisePlan forward(const ConvGeometry& g) { return make(g, &AxisTaps::forward, 1); }
  static DepthwisePlan backward_data(const ConvGeometry& g) {
    return make(g, &AxisTaps::backward_data, g.stride[2]);
  }
};

// The gather passes (forward, backward data): threads split the destination rows; for every run of every
// row, call(run, taps, destination of the run's first pixel).
template <class T, class Call>
void gather_rows(const DepthwisePlan& plan, const T* src, const PixelLayout& from, const T* w, int64_t ldw, T* dst,
                 const PixelLayout& to, Call&& call) {
  const int64_t rows = to.rows();
  if (rows == 0) return;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), rows));
  std::vector<TapTable<T, const T>> tables(threads, TapTable<T, const T>(plan));
  run_parallel(threads, [&](int tid, int team) {
    TapTable<T, const T>& table = tables[tid];
    for (int64_t row = share_start(rows, tid, team); row < share_start(rows, tid + 1, team); ++row) {
      table.set_rows(plan, to.coordinates(row), src, from, w, ldw);
      T* const dst_row = dst + row * to.row_elements();
      for (const AxisRun& run : plan.runs) {
        table.set_columns(plan, run, from.channels, ldw);
        call(run, table.taps(), dst_row + run.first * to.channels);
      }
    }
  });
}

}  // namespace

bool is_depthwise(const ConvGeometry& g) { return g.groups > 1 && g.groups == g.in_channels; }

template <class T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                       T negative_slope) {
  const DwconvUkernel<T>& ukernel = selected_dwconv_ukernel<T>();
  const int64_t c = g.in_channels, f = g.out_channels, m = f / c;
  gather_rows(DepthwisePlan::forward(g), x, {g.batch, g.in, c}, w, f, y, {g.batch, g.out, f},
              [&](const AxisRun& run, const DwconvTaps<T, const T>& taps, T* dst) {
                const DwconvRun where{run.count, c, m, pixel_stride(run, run.source_step, c),
                                      pixel_stride(run, run.step, f)};
                ukernel.forward(where, taps, bias, activation, negative_slope, dst);
              });
}

template <class T>
void depthwise_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const DwconvUkernel<T>& ukernel = selected_dwconv_ukernel<T>();
  const int64_t c = g.in_channels, f = g.out_channels, m = f / c;
  gather_rows(DepthwisePlan::backward_data(g), dy, {g.batch, g.out, f}, w, f, dx, {g.batch, g.in, c},
              [&](const AxisRun& run, const DwconvTaps<T, const T>& taps, T* dst) {
                const DwconvRun where{run.count, c, m, pixel_stride(run, run.source_step, f),
                                      pixel_stride(run, run.step, c)};
                ukernel.backward_data(where, taps, dst);
              });
}

template <class T>
void depthwise_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db) {
  const DwconvUkernel<T>& ukernel = selected_dwconv_ukernel<T>();
  const int64_t c = g.in_channels, f = g.out_channels, m = f / c;
  const int64_t kernel_taps = g.kernel[0] * g.kernel[1] * g.kernel[2];  // w's rows: w was allocated
  const DepthwisePlan plan = DepthwisePlan::forward(g);
  const PixelLayout from{g.batch, g.in, c}, to{g.batch, g.out, f};
  const std::vector<AxisRun> height_runs = find_runs(plan.height, 1);
  std::vector<int64_t> height_run_of(g.out[1]);  // output row h lies in height_runs[height_run_of[h]]
  for (int64_t i = 0; i < int64_t(height_runs.size()); ++i) {
    for (int64_t h = 0; h < height_runs[i].count; ++h) height_run_of[height_runs[i].first + h] = i;
  }
  const int64_t rows = to.rows();

  // The grid of tiles, fixed by the geometry alone: blocks of rows x blocks of channels.
  const int64_t block_rows = std::max<int64_t>(1, kRowBlockPixels / g.out[2]);
  const int64_t row_blocks = ceil_div(rows, block_rows);
  const int64_t block_channels = kChannelBlockBytes / int64_t(sizeof(T));
  const int64_t channel_blocks = ceil_div(c, block_channels);
  const int64_t tiles = row_blocks * channel_blocks;
  const int threads = static_cast<int>(std::clamp<int64_t>(tiles, 1, num_threads()));

  // Sums of (kernel_taps + 1) rows of F: dw's rows, then db's. Each row block has its double totals; a
  // thread sums a tile's products into its float partial sums first. Rows are padded to whole cache lines
  // and channel blocks start on one, so no two threads ever write to one line.
  const int64_t sums = kernel_taps + 1;
  const int64_t total_ld = round_up(f, kCacheLine / int64_t(sizeof(double)));
  const int64_t partial_ld = round_up(block_channels * m, kCacheLine / int64_t(sizeof(T)));
  const WorkspaceCharge total_charge(
      checked_mul(checked_mul(checked_mul(std::max<int64_t>(row_blocks, 1), sums, "depthwise sums"), total_ld,
                              "depthwise sums"), int64_t(sizeof(double)), "depthwise sums"),
      "depthwise weight-gradient totals");
  const WorkspaceCharge partial_charge(
      checked_mul(checked_mul(checked_mul(threads, sums, "depthwise sums"), partial_ld, "depthwise sums"),
                  int64_t(sizeof(T)), "depthwise sums"),
      "depthwise weight-gradient partials");
  AlignedBuffer total_buffer, partial_buffer;
  double* const totals = total_buffer.reserve_elements<double>(total_charge);
  T* const partials = partial_buffer.reserve_elements<T>(partial_charge);
  std::vector<TapTable<T, T>> tables(threads, TapTable<T, T>(plan));
  run_parallel(threads, [&](int tid, int team) {
    T* const partial = partials + tid * sums * partial_ld;
    TapTable<T, T>& table = tables[tid];
    for (int64_t tile = share_start(tiles, tid, team); tile < share_start(tiles, tid + 1, team); ++tile) {
      const int64_t row_block = tile / channel_blocks;
      const int64_t c0 = tile % channel_blocks * block_channels, c1 = std::min(c, c0 + block_channels);
      const int64_t f0 = c0 * m, width = (c1 - c0) * m;
      double* const total = totals + row_block * sums * total_ld + f0;
      for (int64_t s = 0; s < sums; ++s) {
        std::fill(partial + s * partial_ld, partial + s * partial_ld + width, T(0));
        std::fill(total + s * total_ld, total + s * total_ld + width, 0.0);
      }
      auto add_partial_sums_to_total = [&] {
        for (int64_t s = 0; s < sums; ++s) {
          T* const p = partial + s * partial_ld;
          double* const t = total + s * total_ld;
          for (int64_t k = 0; k < width; ++k) t[k] += p[k];
          std::fill(p, p + width, T(0));
        }
      };

      int64_t pending = 0;  // pixels in the partial sums
      // Adds `count` pixels, src_stride and dst_stride apart, of the taps in `table` (the first pixel's).
      auto accumulate = [&](int64_t count, int64_t src_stride, int64_t dst_stride, const T* dy_first) {
        for (int64_t j = 0; j < count; j += kPixelsPerPartialSum) {
          const int64_t pixels = std::min(kPixelsPerPartialSum, count - j);
          ukernel.backward_weights({pixels, c1 - c0, m, src_stride, dst_stride}, table.taps(),
                                   dy_first + j * dst_stride, db ? partial + kernel_taps * partial_ld : nullptr);
          table.advance_sources(pixels * src_stride);
          pending += pixels;
          if (pending >= kPixelsPerPartialSum) {
            add_partial_sums_to_total();
            pending = 0;
          }
        }
      };
      const int64_t block_end = std::min(rows, (row_block + 1) * block_rows);
      for (int64_t row = row_block * block_rows; row < block_end;) {
        // The rows from here to the end of this height run (same n and d, H taps moving uniformly): a W
        // run shorter than that (an image edge, a small map) is summed down those rows, a kernel call per
        // column of pixels, where a call per row would sum a pixel or two per tap (callgrind: the edges'
        // calls took half the instructions at 8x8).
        const std::array<int64_t, 3> ndh = to.coordinates(row);
        const AxisRun& column = height_runs[height_run_of[ndh[2]]];
        const int64_t group = std::min(block_end - row, column.first + column.count - ndh[2]);
        const int64_t column_stride = group > 1 ? column.source_step * from.row_elements() : 0;
        for (const AxisRun& run : plan.runs) {
          if (run.count < group) {  // the longer calls: down the rows, a column per pixel of the run
            for (int64_t q = 0; q < run.count; ++q) {
              table.set_rows(plan, ndh, x + c0, from, partial, partial_ld);
              table.set_columns(plan, run, c, partial_ld);
              table.advance_sources(q * run.source_step * c);
              accumulate(group, column_stride, to.row_elements(),
                         dy + row * to.row_elements() + f0 + (run.first + q * run.step) * f);
            }
            continue;
          }
          for (int64_t r = row; r < row + group; ++r) {
            table.set_rows(plan, to.coordinates(r), x + c0, from, partial, partial_ld);
            table.set_columns(plan, run, c, partial_ld);
            accumulate(run.count, pixel_stride(run, run.source_step, c), pixel_stride(run, run.step, f),
                       dy + r * to.row_elements() + f0 + run.first * f);
          }
        }
        row += group;
      }
      add_partial_sums_to_total();
    }
  });

  // The row blocks' totals, added in block order: the same sums whatever the thread count.
  for (int64_t s = 0; s < sums; ++s) {
    T* const out = s < kernel_taps ? dw + s * f : db;
    if (!out) continue;
    for (int64_t k = 0; k < f; ++k) {
      double sum = 0.0;
      for (int64_t block = 0; block < row_blocks; ++block) sum += totals[(block * sums + s) * total_ld + k];
      out[k] = static_cast<T>(sum);
    }
  }
}

#define CONVKIT_INSTANTIATE_DEPTHWISE(T)                                                                        \
  template void depthwise_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, Activation, T);    \
  template void depthwise_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);                      \
  template void depthwise_backward_weights<T>(const ConvGeometry&, const T*, const T*, T*, T*);
CONVKIT_INSTANTIATE_DEPTHWISE(float)
CONVKIT_INSTANTIATE_DEPTHWISE(double)
#undef CONVKIT_INSTANTIATE_DEPTHWISE

}  // namespace convkit
