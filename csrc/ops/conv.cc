// Convolution forward and backward by im2col + GEMM, channels-last.
//
// Shape legend: N batch, S = in[0..2] input spatial, O = out[0..2] output spatial, K = kernel[0..2],
// C = in_channels, G groups, Cg = C / G, F = out_channels, Fg = F / G, P = N * prod(O) output pixels,
// R = prod(K) * Cg the column row length. Per group g, with cols_g[P, R] from im2col (ops/im2col.h) and
// w_g[R, Fg] the group's columns of w read in place:
//
//   forward          y[:, g]  = cols_g @ w_g                      (+ bias, activation)
//   backward data    dx      += col2im(dy[:, g] @ w_g^T)
//   backward weights dw_g     = cols_g^T @ dy[:, g]               db = sum over P of dy
//
// The forward pass and backward weights never build the column matrix: the GEMM packs its panels straight
// from x (Im2colA as the forward's A, Im2colB as backward weights' B; ops/im2col.h). Backward data's col2im
// path builds it in cache-sized tiles of output pixels, never for the whole batch. A 1x1 kernel with
// stride 1 and no padding needs no im2col at all: x itself is the column matrix.
//
// Every result is independent of the thread count, bit for bit: threads either split a GEMM (whose
// result does not depend on the split) or own whole tiles/images whose arithmetic order is fixed.
#include "ops/conv.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "core/workspace.h"
#include "kernels/registry.h"
#include "ops/conv_direct.h"
#include "ops/depthwise.h"
#include "ops/im2col.h"

namespace convkit {
namespace {

using std::int64_t;

// Bytes of one column tile: big enough that re-packing the weights per tile is cheap, small enough to
// stay in L2/L3.
constexpr int64_t kColumnTileBytes = 1 << 20;
constexpr int64_t kMinTileRows = 96;

struct ConvSizes {
  int64_t image_pixels, pixels, cg, fg, row_len, tile_rows;

  template <class T>
  static ConvSizes of(const ConvGeometry& g) {
    ConvSizes s{};
    s.image_pixels = checked_mul(checked_mul(g.out[0], g.out[1], "conv output"), g.out[2], "conv output");
    s.pixels = checked_mul(g.batch, s.image_pixels, "conv output");
    s.cg = g.in_channels / g.groups;
    s.fg = g.out_channels / g.groups;
    s.row_len = checked_mul(g.kernel[0] * g.kernel[1] * g.kernel[2], s.cg, "conv column row");
    const int64_t row_bytes = checked_mul(s.row_len, int64_t(sizeof(T)), "conv column row");
    s.tile_rows = std::max<int64_t>(kMinTileRows, kColumnTileBytes / row_bytes);
    return s;
  }
  int64_t tile_elements() const { return round_up(checked_mul(tile_rows, row_len, "conv column tile"), 16); }
  template <class T>
  int64_t tile_bytes() const { return checked_mul(tile_elements(), int64_t(sizeof(T)), "conv column tile"); }
  // Halves the tiles until `count` of them and the GEMM panels they need, panels(tile_rows) bytes, fit in
  // `budget` bytes, down to one row (whose fit the caller then checks).
  template <class T, class Panels>
  void fit_tiles(int64_t budget, int count, Panels&& panels) {
    auto needed = [&] {
      return checked_add(checked_mul(tile_bytes<T>(), count, "conv column tiles"), panels(tile_rows), "conv workspace");
    };
    while (tile_rows > 1 && needed() > budget) tile_rows = (tile_rows + 1) / 2;
  }
};

bool is_pointwise(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a) {
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_before[a] != 0 || g.out[a] != g.in[a]) return false;
  }
  return true;
}

// Group `group`'s (R, Fg) block of w, read in place.
template <class T>
MatrixRef<const T> group_weights(const ConvGeometry& g, const ConvSizes& s, const T* w, int64_t group) {
  return {w + group * s.fg, s.row_len, s.fg, g.out_channels, 1};
}

// Rows [p0, p1) of a channels-last (P, channels) array, columns [c0, c0 + width).
template <class T>
MatrixRef<T> pixel_rows(T* data, int64_t channels, int64_t p0, int64_t p1, int64_t c0, int64_t width) {
  return {data + p0 * channels + c0, p1 - p0, width, channels, 1};
}

// `count` column tiles, charged to the workspace while `charge` lives; the buffer is owned by the calling
// thread and reused across calls.
template <class T>
T* column_tiles(const WorkspaceCharge& charge) {
  thread_local AlignedBuffer columns;
  return columns.reserve_elements<T>(charge);
}

template <class T>
int64_t column_tiles_bytes(const ConvSizes& s, int count) {
  return checked_mul(s.tile_bytes<T>(), count, "conv column tiles");
}

// sum[f] = sum over rows of m[p, f], accumulated in double in blocks of rows (the error then grows with
// the block length plus the number of blocks, not with P). Threads split the columns, so every sum is
// computed in the same order whatever the thread count.
template <class T>
void sum_rows(const T* m, int64_t rows, int64_t cols, T* sum, int threads) {
  constexpr int64_t kBlock = 256;
  constexpr int64_t kColumnChunk = 16;
  const int64_t chunks = ceil_div(cols, kColumnChunk);
  run_parallel(static_cast<int>(std::min<int64_t>(threads, chunks)), [&](int tid, int team) {
    double total[kColumnChunk], block[kColumnChunk];
    for (int64_t chunk = tid; chunk < chunks; chunk += team) {
      const int64_t c0 = chunk * kColumnChunk, width = std::min(kColumnChunk, cols - c0);
      std::fill(total, total + width, 0.0);
      for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
        std::fill(block, block + width, 0.0);
        for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r) {
          const T* row = m + r * cols + c0;
          for (int64_t c = 0; c < width; ++c) block[c] += row[c];
        }
        for (int64_t c = 0; c < width; ++c) total[c] += block[c];
      }
      for (int64_t c = 0; c < width; ++c) sum[c0 + c] = static_cast<T>(total[c]);
    }
  });
}

// The most pixels (k) of an m x n x k product whose GEMM packing panels fit the workspace still available to
// this call (core/workspace.h), but not fewer than kMinTileRows: products that short would be mostly
// overhead, so a limit that tight fails in the GEMM with the bytes it needs instead.
template <class T>
int64_t pixels_in_workspace(int64_t m, int64_t n, int64_t pixels, const GemmUkernel<T>& kernel, int threads) {
  const int64_t available = workspace_available();
  const auto fits = [&](int64_t k) { return gemm_workspace_bound<T>(m, n, k, kernel, threads) <= available; };
  if (fits(pixels)) return pixels;
  int64_t lo = std::min(pixels, kMinTileRows), hi = pixels - 1;  // the answer is in [lo, hi]
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// With stride 1 and zero padding, dx is itself a convolution, as fast as the forward pass: of dy, padded
// by (K - 1) * dilation - pad_before, with the kernel flipped along every spatial axis and its channel
// axes swapped (dx[i] = sum over taps k of dy[i + pad_before - k * dilation] * w[k]^T). Its GEMM is
// Cg columns wide, so under one microkernel tile width (16) the col2im scatter, whose GEMM is prod(K) * Cg
// wide, wins; strided and index-mapped padding cases scatter through col2im too.
std::optional<ConvGeometry> backward_data_as_conv(const ConvGeometry& g) {
  constexpr int64_t kMinChannels = 16;
  if (g.mode != PaddingMode::zeros || g.in_channels / g.groups < kMinChannels) return std::nullopt;
  ConvGeometry flipped = g;
  flipped.in_channels = g.out_channels;
  flipped.out_channels = g.in_channels;
  flipped.in = g.out;
  flipped.out = g.in;
  for (int a = 0; a < 3; ++a) {
    flipped.pad_before[a] = (g.kernel[a] - 1) * g.dilation[a] - g.pad_before[a];
    if (g.stride[a] != 1 || flipped.pad_before[a] < 0) return std::nullopt;
  }
  return flipped;
}

// w (K, Cg, F) -> (K, Fg, C): taps in reverse order, and per group the (Cg, Fg) block transposed. The
// caller charges its bytes to the workspace.
template <class T>
std::vector<T> flip_kernel(const ConvGeometry& g, const T* w) {
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const int64_t cg = g.in_channels / g.groups, fg = g.out_channels / g.groups;
  std::vector<T> flipped(static_cast<size_t>(taps * cg * g.out_channels));  // as many elements as w
  for (int64_t t = 0; t < taps; ++t) {
    const T* src = w + t * cg * g.out_channels;
    T* dst = flipped.data() + (taps - 1 - t) * fg * g.in_channels;
    for (int64_t group = 0; group < g.groups; ++group) {
      for (int64_t c = 0; c < cg; ++c) {
        for (int64_t j = 0; j < fg; ++j) {
          dst[j * g.in_channels + group * cg + c] = src[c * g.out_channels + group * fg + j];
        }
      }
    }
  }
  return flipped;
}

}  // namespace

void check_geometry(const ConvGeometry& g) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("conv geometry: " + what); };
  if (g.batch < 0 || g.in_channels < 1 || g.out_channels < 1 || g.groups < 1) fail("sizes must be positive");
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) fail("groups must divide the channels");
  for (int a = 0; a < 3; ++a) {
    if (g.in[a] < 1 || g.out[a] < 1 || g.kernel[a] < 1 || g.stride[a] < 1 || g.dilation[a] < 1 || g.pad_before[a] < 0) {
      fail("spatial sizes, strides and dilations must be positive and padding non-negative, got on axis " +
           std::to_string(a) + ": in " + std::to_string(g.in[a]) + ", out " + std::to_string(g.out[a]) + ", kernel " +
           std::to_string(g.kernel[a]) + ", stride " + std::to_string(g.stride[a]) + ", dilation " +
           std::to_string(g.dilation[a]) + ", pad_before " + std::to_string(g.pad_before[a]));
    }
    // The lowest and highest padded coordinates any output reads.
    const int64_t lo = -g.pad_before[a];
    const int64_t hi = checked_add(checked_mul(g.out[a] - 1, g.stride[a], "conv extent"),
                                   checked_mul(g.kernel[a] - 1, g.dilation[a], "conv extent"), "conv extent") + lo;
    const bool reachable = g.mode == PaddingMode::zeros || g.mode == PaddingMode::replicate ||
                           (g.mode == PaddingMode::reflect && -lo < g.in[a] && hi <= 2 * (g.in[a] - 1)) ||
                           (g.mode == PaddingMode::circular && -lo <= g.in[a] && hi < 2 * g.in[a]);
    if (!reachable) fail("padding too large for the padding mode on axis " + std::to_string(a));
  }
  int64_t input_elements = g.batch * g.in_channels;  // both came from the shapes of allocated arrays
  for (int a = 0; a < 3; ++a) input_elements = checked_mul(input_elements, g.in[a], "conv input");
}

template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                  T negative_slope) {
  check_geometry(g);
  const WorkspaceCall call;
  if (is_depthwise(g)) return depthwise_forward(g, x, w, bias, y, activation, negative_slope);
  if (takes_direct_conv(g)) return direct_conv_forward(g, x, w, bias, y, activation, negative_slope);
  const ConvSizes s = ConvSizes::of<T>(g);
  if (s.pixels == 0) return;
  const GemmUkernel<T>& kernel = selected_gemm_ukernel<T>();
  const int threads = num_threads();
  auto epilogue = [&](int64_t group) {
    return GemmEpilogue<T>{bias ? bias + group * s.fg : nullptr, activation, negative_slope};
  };

  if (is_pointwise(g)) {
    for (int64_t group = 0; group < g.groups; ++group) {
      gemm_cpu(pixel_rows(x, g.in_channels, 0, s.pixels, group * s.cg, s.cg), group_weights(g, s, w, group),
               pixel_rows(y, g.out_channels, 0, s.pixels, group * s.fg, s.fg), T(1), T(0), epilogue(group), kernel,
               threads);
    }
    return;
  }

  for (int64_t group = 0; group < g.groups; ++group) {
    gemm_cpu(Im2colA<T>(g, x, group, s.pixels), group_weights(g, s, w, group),
             pixel_rows(y, g.out_channels, 0, s.pixels, group * s.fg, s.fg), T(1), T(0), epilogue(group), kernel,
             threads);
  }
}

template <class T>
void conv_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  check_geometry(g);
  const WorkspaceCall call;
  if (is_depthwise(g)) return depthwise_backward_data(g, dy, w, dx);
  ConvSizes s = ConvSizes::of<T>(g);
  if (s.pixels == 0) return;
  const GemmUkernel<T>& kernel = selected_gemm_ukernel<T>();
  const int threads = num_threads();

  if (is_pointwise(g)) {  // dx[:, g] = dy[:, g] @ w_g^T, no col2im
    for (int64_t group = 0; group < g.groups; ++group) {
      gemm_cpu(pixel_rows(dy, g.out_channels, 0, s.pixels, group * s.fg, s.fg), group_weights(g, s, w, group).transposed(),
               pixel_rows(dx, g.in_channels, 0, s.pixels, group * s.cg, s.cg), T(1), T(0), {}, kernel, threads);
    }
    return;
  }

  // The flipped kernel (as big as w) and the forward GEMM's panels; when they do not fit the workspace,
  // the col2im path below can still tile down.
  if (std::optional<ConvGeometry> flipped = backward_data_as_conv(g)) {
    const int64_t flipped_bytes = checked_mul(checked_mul(s.row_len, g.out_channels, "conv kernel"),
                                              int64_t(sizeof(T)), "conv flipped kernel");
    const int64_t forward_gemm_bytes =
        gemm_workspace_bound<T>(s.pixels, s.cg, s.row_len / s.cg * s.fg, kernel, threads);
    if (flipped_bytes <= workspace_available() - forward_gemm_bytes) {
      const WorkspaceCharge flipped_charge(flipped_bytes, "conv flipped kernel");
      const std::vector<T> w_flipped = flip_kernel(g, w);
      conv_forward(*flipped, dy, w_flipped.data(), static_cast<const T*>(nullptr), dx, Activation::none, T(0));
      return;
    }
  }

  // col2im of two pixels of one image may add to the same dx element, so threads own whole images (when
  // there are enough to share out evenly, and a full tile and GEMM panels per thread fit the workspace);
  // otherwise one thread walks the images, the GEMM is split, and the tiles shrink to what the workspace
  // leaves beside the GEMM's panels.
  const int64_t available = workspace_available();
  auto gemm_panels_bytes = [&](int64_t tile_rows, int team, int gemm_threads) {  // team GEMMs at once
    return checked_mul(gemm_workspace_bound<T>(tile_rows, s.row_len, s.fg, kernel, gemm_threads), team,
                       "conv workspace");
  };
  const bool image_parallel =
      threads > 1 && (g.batch % threads == 0 || g.batch >= 4 * threads) &&
      checked_add(column_tiles_bytes<T>(s, threads), gemm_panels_bytes(s.tile_rows, threads, 1), "conv workspace") <=
          available;
  const int image_threads = image_parallel ? threads : 1;
  const int gemm_threads = image_parallel ? 1 : threads;
  s.fit_tiles<T>(available, image_threads,
                 [&](int64_t rows) { return gemm_panels_bytes(rows, image_threads, gemm_threads); });
  const int64_t gemm_bytes = gemm_panels_bytes(s.tile_rows, image_threads, gemm_threads);
  const int64_t tiles_bytes = column_tiles_bytes<T>(s, image_threads);
  require_workspace(checked_add(tiles_bytes, gemm_bytes, "conv workspace"),
                    "conv backward data (column tiles and GEMM panels)");
  const WorkspaceCharge tiles_charge(tiles_bytes, "conv column tiles");
  T* space = column_tiles<T>(tiles_charge);
  const int64_t image_elements = g.in[0] * g.in[1] * g.in[2] * g.in_channels;
  run_parallel(image_threads, [&](int tid, int team) {
    T* cols = space + tid * s.tile_elements();
    for (int64_t n = tid; n < g.batch; n += team) {
      std::fill(dx + n * image_elements, dx + (n + 1) * image_elements, T(0));
      const int64_t first = n * s.image_pixels, end = first + s.image_pixels;
      for (int64_t p0 = first; p0 < end; p0 += s.tile_rows) {
        const int64_t p1 = std::min(end, p0 + s.tile_rows);
        for (int64_t group = 0; group < g.groups; ++group) {
          gemm_cpu(pixel_rows(dy, g.out_channels, p0, p1, group * s.fg, s.fg),
                   group_weights(g, s, w, group).transposed(), MatrixRef<T>{cols, p1 - p0, s.row_len, s.row_len, 1},
                   T(1), T(0), {}, kernel, gemm_threads);
          col2im_rows(g, cols, group, p0, p1, dx);
        }
      }
    }
  });
}

template <class T>
void conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db) {
  check_geometry(g);
  const WorkspaceCall call;
  if (is_depthwise(g)) return depthwise_backward_weights(g, dy, x, dw, db);
  if (takes_direct_conv(g)) return direct_conv_backward_weights(g, dy, x, dw, db);
  ConvSizes s = ConvSizes::of<T>(g);
  const GemmUkernel<T>& kernel = selected_gemm_ukernel<T>();
  const int threads = num_threads();
  if (db) sum_rows(dy, s.pixels, g.out_channels, db, threads);
  if (s.pixels == 0) {
    std::fill(dw, dw + s.row_len * g.out_channels, T(0));
    return;
  }

  // dw_g^T = dy_g^T @ cols_g. Computing the transpose makes the column matrix the GEMM's B, which packs
  // itself from x (Im2colB: no column buffer), and the narrow dy the A. k runs over the P pixels in one
  // product, or in chunks summed in order where its packing panels would not fit the workspace limit.
  const int64_t dw_elements = checked_mul(s.row_len, g.out_channels, "conv kernel");
  const WorkspaceCharge dw_charge(checked_mul(dw_elements, int64_t(sizeof(T)), "conv weight gradient"),
                                  "conv weight gradient");
  std::vector<T> dw_transposed(static_cast<size_t>(dw_elements));  // per group (Fg, R)
  const int64_t chunk = pixels_in_workspace(s.fg, s.row_len, s.pixels, kernel, threads);
  for (int64_t group = 0; group < g.groups; ++group) {
    const MatrixRef<T> dw_t{dw_transposed.data() + group * s.fg * s.row_len, s.fg, s.row_len, s.row_len, 1};
    for (int64_t p0 = 0; p0 < s.pixels; p0 += chunk) {
      const int64_t p1 = std::min(s.pixels, p0 + chunk);
      const MatrixRef<const T> dy_t = pixel_rows(dy, g.out_channels, p0, p1, group * s.fg, s.fg).transposed();
      const T beta = p0 == 0 ? T(0) : T(1);
      if (is_pointwise(g)) {  // x is the column matrix
        gemm_cpu(dy_t, pixel_rows(x, g.in_channels, p0, p1, group * s.cg, s.cg), dw_t, T(1), beta, {}, kernel, threads);
      } else {
        gemm_cpu(StridedA<T>(dy_t), Im2colB<T>(g, x, group, p0, p1 - p0), dw_t, T(1), beta, {}, kernel, threads);
      }
    }
  }
  for (int64_t group = 0; group < g.groups; ++group) {
    const T* src = dw_transposed.data() + group * s.fg * s.row_len;
    for (int64_t r = 0; r < s.row_len; ++r) {
      for (int64_t j = 0; j < s.fg; ++j) dw[r * g.out_channels + group * s.fg + j] = src[j * s.row_len + r];
    }
  }
}

#define CONVKIT_INSTANTIATE_CONV(T)                                                                            \
  template void conv_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, Activation, T);        \
  template void conv_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);                          \
  template void conv_backward_weights<T>(const ConvGeometry&, const T*, const T*, T*, T*);
CONVKIT_INSTANTIATE_CONV(float)
CONVKIT_INSTANTIATE_CONV(double)
#undef CONVKIT_INSTANTIATE_CONV

}  // namespace convkit
