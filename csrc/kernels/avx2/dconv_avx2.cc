// AVX2/FMA direct-convolution kernels (the contract is in kernels/dconv_ukernel.h), vectorised over
// output channels, one template over the vector type for float and double.
//
//   forward: a tile of P pixels x V vectors of output channels (8 x 1 or 6 x 2 vectors: 8 or 12
//     accumulators, enough independent FMA chains to cover the FMA latency) stays in registers across
//     every tap and input channel. Per tap and channel, V weight vectors are loaded once and each pixel's
//     source value is broadcast once: P + V loads for P * V FMAs. No packing: sources are read in place,
//     which is what makes few channels cheap (im2col + GEMM packs every source value once per use, and
//     its 16-wide tile wastes most lanes when F is 6). One input channel read at stride 1 takes the
//     pixel-vectorised path (single_channel_forward below).
//   backward weights: a tile of Q consecutive (tap, channel) pairs x V vectors of dw (up to 8 x 1 or
//     6 x 2) stays in registers while the run's pixels stream past: per pixel, V dy vectors serve Q
//     broadcasts. Pairs are consecutive within a tap row when its columns are (stride-1 taps along W
//     without dilation: x's channels-last row then holds a window's columns x channels in order), so
//     one pointer addresses a tile's sources.
//
// A channel tail (F not a multiple of the vector) is computed on whole vectors, the packed weights being
// zero past F; dy loads, bias loads and destination stores are masked only where a whole vector would
// reach past the tile's or run's last pixel. Tiles at the end of a run
// use the same code with a smaller P or Q, and every value is summed in the contract's order, so the
// tiling never changes a result.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/dconv_ukernel.h"

namespace convkit::avx2 {
namespace {

using std::int64_t;

// Calls body(std::integral_constant<int, n>) for a runtime n in [1, N]: tiles sized at compile time,
// whose accumulators the compiler keeps in registers.
template <int N, class Body>
inline void with_tile_size(int n, Body&& body) {
  if constexpr (N >= 1) {
    if (n == N) return body(std::integral_constant<int, N>{});
    with_tile_size<N - 1>(n, body);
  }
}

// The lanes [0, valid) of a vector, loaded or stored whole when valid covers them all.
template <class S>
struct Tail {
  int64_t valid;
  typename S::V load(const typename S::T* p) const {
    return valid >= S::lanes ? S::load(p) : S::load(p, S::first_lanes(valid));
  }
  void store(typename S::T* p, typename S::V v) const {
    if (valid >= S::lanes) S::store(p, v);
    else S::store(p, S::first_lanes(valid), v);
  }
};

// Calls block(f0, V) over the output channels: blocks of 2 vectors while more than one vector's worth
// is left, then one.
template <class S, class Block>
inline void for_output_blocks(int64_t channels, Block&& block) {
  constexpr int L = S::lanes;
  int64_t f0 = 0;
  for (; channels - f0 > L; f0 += 2 * L) block(f0, std::integral_constant<int, 2>{});
  if (f0 < channels) block(f0, std::integral_constant<int, 1>{});
}

template <int V>
constexpr int kForwardPixels = V == 1 ? 8 : 6;
template <int V>
constexpr int kWeightPairs = V == 1 ? 8 : 6;

// True if column k's source and weights lie k channel runs after column 0's (stride-1 taps along W, no
// dilation): a tap row's columns x channels are then one run of consecutive sources and weight rows.
template <class T, class Weight>
bool columns_are_consecutive(const DconvTaps<T, Weight>& taps, int64_t channels, int64_t w_ld) {
  for (int64_t k = 1; k < taps.columns; ++k) {
    if (taps.column_src[k] != taps.column_src[0] + k * channels ||
        taps.column_w[k] != taps.column_w[0] + k * channels * w_ld) {
      return false;
    }
  }
  return true;
}

template <class S, int P, int V>
void forward_tile(const DconvRun& run, const DconvTaps<typename S::T, const typename S::T>& taps, bool consecutive,
                  int64_t j, int64_t f0, const typename S::T* bias, Activation activation,
                  typename S::T negative_slope, typename S::T* dst) {
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes;
  const int64_t ss = run.src_stride, ld = run.w_ld;
  Vec acc[P][V];
  #pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[p][v] = S::zero();
  }
  // Per tap row, one run of columns x channels consecutive (source value, weight row) pairs, or one run
  // of channels per column. (Written without a lambda: gcc then keeps acc in registers.)
  const int64_t runs = consecutive ? std::min<int64_t>(taps.columns, 1) : taps.columns;
  const int64_t length = consecutive ? taps.columns * run.in_channels : run.in_channels;
  for (int64_t r = 0; r < taps.rows; ++r) {
    for (int64_t k = 0; k < runs; ++k) {
      const T* src[P];
      #pragma GCC unroll 16
      for (int p = 0; p < P; ++p) src[p] = taps.row_src[r] + taps.column_src[k] + (j + p) * ss;
      const T* w = taps.row_w[r] + taps.column_w[k] + f0;
      for (int64_t q = 0; q < length; ++q, w += ld) {
        Vec wv[V];
        #pragma GCC unroll 16
        for (int v = 0; v < V; ++v) wv[v] = S::load(w + v * L);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) {
          const Vec x = S::broadcast(src[p] + q);
          #pragma GCC unroll 16
          for (int v = 0; v < V; ++v) acc[p][v] = S::fmadd(x, wv[v], acc[p][v]);
        }
      }
    }
  }
  const Vec slope = S::broadcast(&negative_slope);
  Vec b[V];
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) b[v] = bias ? Tail<S>{run.out_channels - f0 - v * L}.load(bias + f0 + v * L) : S::zero();
  // Masked stores are slow (microcoded on Zen 3). Where this tile's pixels are contiguous and its block
  // is the only one (f0 == 0), a pixel's tail vector is stored whole: the lanes past F land on the next
  // pixels' channels, which this tile stores afterwards. Pixels whose spill would pass the tile's last
  // pixel are stored masked.
  const bool contiguous = f0 == 0 && run.dst_stride == run.out_channels;
  #pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    const bool whole = contiguous && (P - p) * run.out_channels >= V * L;
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      Vec out = S::add(acc[p][v], b[v]);
      if (activation == Activation::relu) out = S::max(S::zero(), out);  // NaN stays NaN
      if (activation == Activation::leaky_relu) out = S::less_select(out, S::mul(out, slope), out);
      T* const to = dst + (j + p) * run.dst_stride + f0 + v * L;
      if (whole) S::store(to, out);
      else Tail<S>{run.out_channels - f0 - v * L}.store(to, out);
    }
  }
}

// One input channel read with stride 1 (a grayscale first layer): vectorised over pixels instead, as
// consecutive output pixels read consecutive source values. A tile of kPixelVectors x L pixels x FB <= 6
// output channels: per tap, kPixelVectors source loads and FB weight broadcasts serve kPixelVectors * FB
// FMAs with every lane in use (over output channels, F = 6 would fill 6 of 8). The sums are the channel
// path's, term by term (fma(x, w, acc) per tap in order, bias last), so the two paths agree to the bit.
// The tile is transposed to channels-last through the stack.
constexpr int kPixelVectors = 2;
constexpr int kSingleChannelBlock = 6;

template <class S, int FB>
void single_channel_tile(const DconvRun& run, const DconvTaps<typename S::T, const typename S::T>& taps, int64_t j,
                         int64_t f0, const typename S::T* bias, Activation activation, typename S::T negative_slope,
                         typename S::T* dst) {
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes, PV = kPixelVectors;
  const int64_t pixels = std::min<int64_t>(PV * L, run.pixels - j);
  Tail<S> lanes[PV];
#pragma GCC unroll 16
  for (int v = 0; v < PV; ++v) lanes[v] = {std::clamp<int64_t>(pixels - v * L, 0, L)};
  Vec acc[FB][PV];
#pragma GCC unroll 16
  for (int f = 0; f < FB; ++f) {
#pragma GCC unroll 16
    for (int v = 0; v < PV; ++v) acc[f][v] = S::zero();
  }
  for (int64_t r = 0; r < taps.rows; ++r) {
    for (int64_t k = 0; k < taps.columns; ++k) {
      const T* const src = taps.row_src[r] + taps.column_src[k] + j;
      const T* const w = taps.row_w[r] + taps.column_w[k] + f0;
      Vec x[PV];
#pragma GCC unroll 16
      for (int v = 0; v < PV; ++v) x[v] = pixels == PV * L ? S::load(src + v * L) : lanes[v].load(src + v * L);
#pragma GCC unroll 16
      for (int f = 0; f < FB; ++f) {
        const Vec wf = S::broadcast(w + f);
#pragma GCC unroll 16
        for (int v = 0; v < PV; ++v) acc[f][v] = S::fmadd(x[v], wf, acc[f][v]);
      }
    }
  }
  alignas(32) T out[FB][PV * L];
  const Vec slope = S::broadcast(&negative_slope);
#pragma GCC unroll 16
  for (int f = 0; f < FB; ++f) {
    const Vec b = bias ? S::broadcast(bias + f0 + f) : S::zero();
#pragma GCC unroll 16
    for (int v = 0; v < PV; ++v) {
      Vec y = S::add(acc[f][v], b);
      if (activation == Activation::relu) y = S::max(S::zero(), y);
      if (activation == Activation::leaky_relu) y = S::less_select(y, S::mul(y, slope), y);
      S::store(out[f] + v * L, y);
    }
  }
  for (int64_t p = 0; p < pixels; ++p) {
    T* const to = dst + (j + p) * run.dst_stride + f0;
#pragma GCC unroll 16
    for (int f = 0; f < FB; ++f) to[f] = out[f][p];
  }
}

template <class S>
void single_channel_forward(const DconvRun& run, const DconvTaps<typename S::T, const typename S::T>& taps,
                            const typename S::T* bias, Activation activation, typename S::T negative_slope,
                            typename S::T* dst) {
  for (int64_t f0 = 0; f0 < run.out_channels; f0 += kSingleChannelBlock) {
    const int block = static_cast<int>(std::min<int64_t>(kSingleChannelBlock, run.out_channels - f0));
    with_tile_size<kSingleChannelBlock>(block, [&](auto channels) {
      for (int64_t j = 0; j < run.pixels; j += kPixelVectors * S::lanes) {
        single_channel_tile<S, decltype(channels)::value>(run, taps, j, f0, bias, activation, negative_slope, dst);
      }
    });
  }
}

template <class S>
void forward(const DconvRun& run, const DconvTaps<typename S::T, const typename S::T>& taps,
             const typename S::T* bias, Activation activation, typename S::T negative_slope,
             typename S::T* dst) noexcept {
  if (run.in_channels == 1 && run.src_stride == 1) {
    return single_channel_forward<S>(run, taps, bias, activation, negative_slope, dst);
  }
  const bool consecutive = columns_are_consecutive(taps, run.in_channels, run.w_ld);
  for_output_blocks<S>(run.out_channels, [&](int64_t f0, auto vectors) {
    constexpr int V = decltype(vectors)::value, P = kForwardPixels<V>;
    int64_t j = 0;
    for (; j + P <= run.pixels; j += P) {
      forward_tile<S, P, V>(run, taps, consecutive, j, f0, bias, activation, negative_slope, dst);
    }
    with_tile_size<P - 1>(static_cast<int>(run.pixels - j), [&](auto pixels) {
      forward_tile<S, decltype(pixels)::value, V>(run, taps, consecutive, j, f0, bias, activation, negative_slope, dst);
    });
  });
}

// Q consecutive (tap, channel) pairs of one segment x V vectors of dw: pair q reads src[q + j * ss] and
// adds into the dw row at dw + q * w_ld. One base pointer serves the Q sources (immediate offsets).
template <class S, int Q, int V>
void weights_tile(const DconvRun& run, const typename S::T* src, typename S::T* dw, const typename S::T* dy,
                  int64_t f0) {
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes;
  Vec acc[Q][V];
#pragma GCC unroll 16
  for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[q][v] = S::zero();
  }
  Tail<S> lanes[V];
#pragma GCC unroll 16
  for (int v = 0; v < V; ++v) lanes[v] = {run.out_channels - f0 - v * L};
  const int64_t ss = run.src_stride, ds = run.dst_stride;
  // Masked loads are slow too: a pixel's dy is loaded whole while the lanes past F stay inside the run
  // (they add garbage into dw's padding lanes, which nobody reads); the last pixels load masked.
  const int64_t overhang = f0 + V * L - run.out_channels;
  const T* d = dy + f0;
  const T* x = src;
  for (int64_t j = 0; j < run.pixels; ++j, d += ds, x += ss) {
    const bool whole = (run.pixels - 1 - j) * ds >= overhang;
    Vec g[V];
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) g[v] = whole ? S::load(d + v * L) : lanes[v].load(d + v * L);
#pragma GCC unroll 16
    for (int q = 0; q < Q; ++q) {
      const Vec b = S::broadcast(x + q);
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[q][v] = S::fmadd(b, g[v], acc[q][v]);
    }
  }
#pragma GCC unroll 16
  for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      T* const to = dw + q * run.w_ld + f0 + v * L;
      S::store(to, S::add(S::load(to), acc[q][v]));
    }
  }
}

template <class S>
void backward_weights(const DconvRun& run, const DconvTaps<typename S::T, typename S::T>& taps,
                      const typename S::T* dy, typename S::T* db) noexcept {
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes;
  // Segments of consecutive pairs: per tap row, its columns x channels, or per column, its channels.
  const bool consecutive = columns_are_consecutive(taps, run.in_channels, run.w_ld);
  const int64_t segments = consecutive ? std::min<int64_t>(taps.columns, 1) : taps.columns;
  const int64_t length = consecutive ? taps.columns * run.in_channels : run.in_channels;
  for_output_blocks<S>(run.out_channels, [&](int64_t f0, auto vectors) {
    constexpr int V = decltype(vectors)::value, Q = kWeightPairs<V>;
    for (int64_t r = 0; r < taps.rows; ++r) {
      for (int64_t k = 0; k < segments; ++k) {
        const T* const src = taps.row_src[r] + taps.column_src[k];
        T* const dw = taps.row_w[r] + taps.column_w[k];
        int64_t q = 0;
        for (; q + Q <= length; q += Q) weights_tile<S, Q, V>(run, src + q, dw + q * run.w_ld, dy, f0);
        with_tile_size<Q - 1>(static_cast<int>(length - q), [&](auto count) {
          weights_tile<S, decltype(count)::value, V>(run, src + q, dw + q * run.w_ld, dy, f0);
        });
      }
    }
  });
  if (!db) return;
  for (int64_t f0 = 0; f0 < run.out_channels; f0 += L) {
    const Tail<S> lanes{run.out_channels - f0};
    Vec sum = S::zero();
    for (int64_t j = 0; j < run.pixels; ++j) sum = S::add(sum, lanes.load(dy + j * run.dst_stride + f0));
    lanes.store(db + f0, S::add(lanes.load(db + f0), sum));
  }
}

template <class S>
constexpr DconvUkernel<typename S::T> dconv_kernel(const char* name) {
  return {name, Isa::avx2_fma, forward<S>, backward_weights<S>};
}

}  // namespace
}  // namespace convkit::avx2

namespace convkit {
const DconvUkernel<float> f32_dconv_6x16_avx2 = avx2::dconv_kernel<avx2::F32x8>("f32-dconv-6x16-avx2");
const DconvUkernel<double> f64_dconv_6x8_avx2 = avx2::dconv_kernel<avx2::F64x4>("f64-dconv-6x8-avx2");
}  // namespace convkit
