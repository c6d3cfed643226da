// Convolution forward by im2col + GEMM, channels-last.
//
// Shape legend: N batch, S = in[0..2] input spatial, O = out[0..2] output spatial, K = kernel[0..2],
// C = in_channels, G groups, Cg = C / G, F = out_channels, Fg = F / G, P = N * prod(O) output pixels.
//
//   y[P, F] viewed per group g:  y[:, g*Fg:(g+1)*Fg] = cols_g[P, prod(K) * Cg] @ w[prod(K) * Cg, g*Fg:(g+1)*Fg]
//
// cols_g row p = for each kernel offset (kd, kh, kw), the Cg channels of group g at the input position
// that offset reads, padding resolved by index mapping (never a padded copy of x). The rows are built in
// cache-sized tiles, threads taking whole tiles; a 1x1 kernel with stride 1 and no padding needs no
// im2col at all (x is already cols).
#include "ops/conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit {
namespace {

using std::int64_t;

// Bytes of one thread's column tile: big enough that re-packing the weights per tile is cheap, small
// enough to stay in L2/L3.
constexpr int64_t kColumnTileBytes = 1 << 20;
constexpr int64_t kMinTileRows = 96;

// The input index a padded coordinate reads, or -1 for a zero.
int64_t source_index(int64_t i, int64_t size, PaddingMode mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PaddingMode::zeros: return -1;
    case PaddingMode::reflect: return i < 0 ? -i : 2 * (size - 1) - i;  // edge sample not repeated
    case PaddingMode::replicate: return i < 0 ? 0 : size - 1;
    case PaddingMode::circular: return ((i % size) + size) % size;
  }
  return -1;
}

// Rows [p0, p1) of cols for group `group` into dst (row length prod(K) * Cg).
template <class T>
void im2col_rows(const ConvGeometry& g, const T* x, int64_t group, int64_t p0, int64_t p1, T* dst) {
  const int64_t cg = g.in_channels / g.groups;
  for (int64_t p = p0; p < p1; ++p) {
    int64_t rest = p;
    const int64_t ow = rest % g.out[2]; rest /= g.out[2];
    const int64_t oh = rest % g.out[1]; rest /= g.out[1];
    const int64_t od = rest % g.out[0];
    const int64_t n = rest / g.out[0];
    const T* image = x + n * g.in[0] * g.in[1] * g.in[2] * g.in_channels + group * cg;
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      const int64_t id = source_index(od * g.stride[0] - g.pad_before[0] + kd * g.dilation[0], g.in[0], g.mode);
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        const int64_t ih = source_index(oh * g.stride[1] - g.pad_before[1] + kh * g.dilation[1], g.in[1], g.mode);
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw, dst += cg) {
          const int64_t iw = source_index(ow * g.stride[2] - g.pad_before[2] + kw * g.dilation[2], g.in[2], g.mode);
          if (id < 0 || ih < 0 || iw < 0) {
            std::fill(dst, dst + cg, T(0));
          } else {
            const T* src = image + ((id * g.in[1] + ih) * g.in[2] + iw) * g.in_channels;
            std::copy(src, src + cg, dst);
          }
        }
      }
    }
  }
}

bool is_pointwise(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a) {
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_before[a] != 0 || g.out[a] != g.in[a]) return false;
  }
  return true;
}

}  // namespace

void check_geometry(const ConvGeometry& g) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("conv geometry: " + what); };
  if (g.batch < 0 || g.in_channels < 1 || g.out_channels < 1 || g.groups < 1) fail("sizes must be positive");
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) fail("groups must divide the channels");
  for (int a = 0; a < 3; ++a) {
    if (g.in[a] < 1 || g.out[a] < 1 || g.kernel[a] < 1 || g.stride[a] < 1 || g.dilation[a] < 1 || g.pad_before[a] < 0) {
      fail("spatial sizes, strides and dilations must be positive and padding non-negative (axis " +
           std::to_string(a) + ")");
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
}

template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                  T negative_slope) {
  check_geometry(g);
  const int64_t pixels = checked_mul(checked_mul(checked_mul(g.batch, g.out[0], "conv output"), g.out[1],
                                                 "conv output"), g.out[2], "conv output");
  if (pixels == 0 || g.out_channels == 0) return;
  const int64_t cg = g.in_channels / g.groups, fg = g.out_channels / g.groups;
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const int64_t row_len = checked_mul(taps, cg, "conv column row");
  const GemmUkernel<T>& kernel = selected_gemm_ukernel<T>();
  const int threads = num_threads();

  auto weights = [&](int64_t group) {  // (prod(K) * Cg, Fg) columns of group `group`, read in place
    return MatrixRef<const T>{w + group * fg, row_len, fg, g.out_channels, 1};
  };
  auto epilogue = [&](int64_t group) {
    return GemmEpilogue<T>{bias ? bias + group * fg : nullptr, activation, negative_slope};
  };

  if (is_pointwise(g)) {  // x is already the column matrix: one GEMM per group over all pixels
    for (int64_t group = 0; group < g.groups; ++group) {
      const MatrixRef<const T> cols{x + group * cg, pixels, cg, g.in_channels, 1};
      gemm_cpu(cols, weights(group), MatrixRef<T>{y + group * fg, pixels, fg, g.out_channels, 1}, T(1), T(0),
               epilogue(group), kernel, threads);
    }
    return;
  }

  const int64_t tile_rows = std::max<int64_t>(kMinTileRows, kColumnTileBytes / (row_len * int64_t(sizeof(T))));
  const int64_t tiles = ceil_div(pixels, tile_rows);
  // Few tiles: build them one by one and let the GEMM use the threads. Many: threads take whole tiles.
  const int tile_threads = tiles >= 2 * threads ? threads : 1;
  const int gemm_threads = tile_threads == 1 ? threads : 1;
  const int64_t tile_elems = round_up(checked_mul(tile_rows, row_len, "conv column tile"), 16);
  thread_local AlignedBuffer columns;  // owned by the calling thread, reused across calls
  T* space = columns.reserve_elements<T>(checked_mul(tile_elems, tile_threads, "conv column tiles"));

  run_parallel(tile_threads, [&](int tid, int team) {
    T* cols = space + tid * tile_elems;
    for (int64_t tile = tid; tile < tiles; tile += team) {
      const int64_t p0 = tile * tile_rows, p1 = std::min(pixels, p0 + tile_rows);
      for (int64_t group = 0; group < g.groups; ++group) {
        im2col_rows(g, x, group, p0, p1, cols);
        gemm_cpu(MatrixRef<const T>{cols, p1 - p0, row_len, row_len, 1}, weights(group),
                 MatrixRef<T>{y + p0 * g.out_channels + group * fg, p1 - p0, fg, g.out_channels, 1}, T(1), T(0),
                 epilogue(group), kernel, gemm_threads);
      }
    }
  });
}

template void conv_forward<float>(const ConvGeometry&, const float*, const float*, const float*, float*, Activation,
                                  float);
template void conv_forward<double>(const ConvGeometry&, const double*, const double*, const double*, double*,
                                   Activation, double);

}  // namespace convkit
