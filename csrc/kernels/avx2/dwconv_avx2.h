// AVX2/FMA depthwise kernels (the contract is in kernels/dwconv_ukernel.h), vectorised over channels.
//
// Loads, not FMAs, bound these kernels (about two vector loads per cycle on the Zen 3 they were tuned
// on), so each path makes a loaded vector serve several FMAs:
//
//   sliding (forward, backward data): when a call's 3, 5 or 7 columns read consecutive source pixels
//     (stride 1 along W, no dilation: the interior of every common depthwise layer), a tile of 8 pixels
//     x 1 vector loads each source pixel once and adds it into every output that reads it, weights in
//     registers: 0.6 loads per FMA instead of 1.5.
//     It takes runs of at least 8 pixels; the run's last few pixels go to the register-taps path.
//   register taps (forward, backward data): at most 9 taps (3x3 or part of one, any stride or dilation:
//     stride-2 layers, image edges, short runs): the weights stay in registers over a block of pixels
//     and every source is an FMA's memory operand, ~1.5 instructions per FMA. It made the stride-2 and
//     the small (16x16 and below) MobileNet layers 1.1-1.4x faster than the tiles below did.
//   general (forward, backward data): a tile of 4 pixels x 2 vectors (4 x 16 floats, 4 x 8 doubles)
//     walks the taps; each tap's weight vectors serve the 4 pixels.
//   backward weights, sliding: one kernel row's 3, 5 or 7 accumulators stay in registers while the
//     pixels stream past, the source pixels held in a register window: 2 loads per 3 to 7 FMAs (two
//     vectors at a time for 3 columns, for twice the independent FMA chains).
//   backward weights, general: up to 9 taps accumulate in registers, each dy vector serving 9 FMAs.
//
// Every path walks pixel tiles outermost and all channels within a tile, so that sources and
// destinations are read and written in address order and each cache line is used up while in L1.
// The paths of an op do the same FMAs in the same order (forward: the taps, then the bias), so a
// value does not depend on which one computed it. Channel tails use masked loads and stores with the
// same per-lane arithmetic as full vectors, so a channel's result does not depend on where a call's
// channel range starts. A channel multiplier above 1 falls back to the reference kernel.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/dwconv_ukernel.h"

namespace convkit::avx2 {

// The lanes of one channel vector: all of them, or the first few (a channel tail) through a mask.
template <class S, bool kMasked>
struct Lanes {
  typename S::Mask mask;

  typename S::V load(const typename S::T* p) const {
    if constexpr (kMasked) return S::load(p, mask);
    else return S::load(p);
  }
  void store(typename S::T* p, typename S::V v) const {
    if constexpr (kMasked) S::store(p, mask, v);
    else S::store(p, v);
  }
};

// Calls Body<V, masked>::run(c, lanes, args...) over the channels: blocks of kVectors full vectors, then
// single vectors, then a masked tail.
template <class S, int kVectors, template <int, bool> class Body, class... Args>
void for_channel_blocks(std::int64_t channels, const Args&... args) {
  constexpr int L = S::lanes;
  std::int64_t c = 0;
  if constexpr (kVectors > 1) {
    for (; c + kVectors * L <= channels; c += kVectors * L) Body<kVectors, false>::run(c, Lanes<S, false>{}, args...);
  }
  for (; c + L <= channels; c += L) Body<1, false>::run(c, Lanes<S, false>{}, args...);
  if (c < channels) Body<1, true>::run(c, Lanes<S, true>{S::first_lanes(channels - c)}, args...);
}

// True if column k reads k source pixels after column 0: the sliding paths apply.
template <class T, class Weight>
bool columns_are_consecutive(const DwconvTaps<T, Weight>& taps, std::int64_t src_stride) {
  for (std::int64_t k = 1; k < taps.columns; ++k) {
    if (taps.column_src[k] != taps.column_src[0] + k * src_stride) return false;
  }
  return true;
}

// Requests `count` pixels, `stride` elements apart from `first`, one cache line each. The kernels call it
// for the tile after the current one, from every other channel vector (a line holds two): for the newest
// source row (the last, which no earlier destination row has read: it comes from memory, not L2), for
// dy in backward weights and for the destination (whose stores then need not wait for their lines).
// Spread over the tile's work, the requests keep memory busy while it computes, where the hardware
// prefetchers, seeing the tile's strided walk, fall behind.
template <class T>
inline void prefetch_pixels(const T* first, std::int64_t stride, int count) {
  for (int p = 0; p < count; ++p) _mm_prefetch(reinterpret_cast<const char*>(first + p * stride), _MM_HINT_T0);
}

// True for the channel vectors that issue the prefetches: every other one.
template <class S>
inline bool prefetches(std::int64_t c) {
  return c % (2 * S::lanes) == 0;
}

// ---- forward / backward data: dst[j, c] = act(sum_t src_t[j, c] * w_t[c] + bias[c]) -------------------

template <class S>
struct GatherArgs {
  const DwconvRun& run;
  const DwconvTaps<typename S::T, const typename S::T>& taps;
  const typename S::T* bias;  // may be null
  Activation activation;
  typename S::T negative_slope;
  typename S::T* dst;
};

// The bias, added to every sum last: as a first term its load would head every sum's chain of dependent
// FMAs, the latency that bounds these kernels (starting the sums at the bias measured 0.88-0.94x on the
// 56x56x128 forward in four A/B runs at load 4-6; bias last, as here, 0.91-1.05x of the original).
template <class S, bool kMasked>
inline typename S::V bias_of(const typename S::T* bias, std::int64_t c, Lanes<S, kMasked> lanes) {
  return bias ? lanes.load(bias + c) : S::zero();
}

// Applies the activation to a finished sum.
template <class S>
inline typename S::V activated(typename S::V sum, Activation activation, typename S::V slope) {
  if (activation == Activation::relu) return S::max(S::zero(), sum);  // NaN stays NaN
  if (activation == Activation::leaky_relu) return S::less_select(sum, S::mul(sum, slope), sum);
  return sum;
}

// Adds the bias, applies the activation and stores a P x V tile of sums.
template <class S, int P, int V, bool kMasked>
inline void finish_tile(const GatherArgs<S>& a, std::int64_t j, std::int64_t c, Lanes<S, kMasked> lanes,
                        typename S::V (&acc)[P][V]) {
  constexpr int L = S::lanes;
  const std::int64_t ds = a.run.dst_stride;
  const Activation activation = a.activation;  // a local: the stores below may alias `a` for all the compiler knows
  const typename S::V slope = S::broadcast(&a.negative_slope);
  typename S::T* const dst = a.dst + j * ds + c;
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const typename S::V bias = bias_of(a.bias, c + v * L, lanes);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      lanes.store(dst + p * ds + v * L, activated<S>(S::add(acc[p][v], bias), activation, slope));
    }
  }
}

// Any taps: P pixels x V vectors of accumulators; each tap loads V weight vectors and P x V sources.
template <class S, int P>
struct GeneralTile {
  template <int V, bool kMasked>
  struct Block {
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const GatherArgs<S>& a, std::int64_t j) {
      static_assert(!kMasked || V == 1, "only a single vector is masked");
      using T = typename S::T;
      using Vec = typename S::V;
      constexpr int L = S::lanes;
      const auto& taps = a.taps;
      const std::int64_t ss = a.run.src_stride;
      Vec acc[P][V];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[p][v] = S::zero();
      }
      for (std::int64_t r = 0; r < taps.rows; ++r) {
        const T* const src_row = taps.row_src[r] + j * ss + c;
        const T* const w_row = taps.row_w[r] + c;
        for (std::int64_t k = 0; k < taps.columns; ++k) {
          const T* const x = src_row + taps.column_src[k];
          Vec wv[V];
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) wv[v] = lanes.load(w_row + taps.column_w[k] + v * L);
#pragma GCC unroll 16
          for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) acc[p][v] = S::fmadd(lanes.load(x + p * ss + v * L), wv[v], acc[p][v]);
          }
        }
      }
      finish_tile(a, j, c, lanes, acc);
    }
  };
};

// K consecutive columns: P pixels x 1 vector; source pixel i of the tile serves outputs i - k, k < K.
template <class S, int P, int K>
struct SlidingTile {
  template <int V, bool kMasked>
  struct Block {
    static_assert(V == 1, "the sliding tile is one vector wide");
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const GatherArgs<S>& a, std::int64_t j) {
      using T = typename S::T;
      using Vec = typename S::V;
      const auto& taps = a.taps;
      const std::int64_t ss = a.run.src_stride;
      if (taps.rows > 0 && j + 2 * P <= a.run.pixels && prefetches<S>(c)) {  // the next tile's new pixels
        prefetch_pixels(taps.row_src[taps.rows - 1] + taps.column_src[0] + (j + P + K - 1) * ss + c, ss, P);
        prefetch_pixels(a.dst + (j + P) * a.run.dst_stride + c, a.run.dst_stride, P);  // no store waits
      }
      Vec acc[P][1];
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) acc[p][0] = S::zero();
      for (std::int64_t r = 0; r < taps.rows; ++r) {
        const T* const x = taps.row_src[r] + taps.column_src[0] + j * ss + c;
        Vec wv[K];
#pragma GCC unroll 8
        for (int k = 0; k < K; ++k) wv[k] = lanes.load(taps.row_w[r] + taps.column_w[k] + c);
#pragma GCC unroll 16
        for (int i = 0; i < P + K - 1; ++i) {
          const Vec xi = lanes.load(x + i * ss);
#pragma GCC unroll 8
          for (int k = 0; k < K; ++k) {  // k ascending for each output: the general tile's order
            if (i - k >= 0 && i - k < P) acc[i - k][0] = S::fmadd(xi, wv[k], acc[i - k][0]);
          }
        }
      }
      finish_tile(a, j, c, lanes, acc);
    }
  };
};

// At most kRegisterTaps taps (a 3x3 kernel or any part of one, with any stride or dilation): a channel
// vector's weights and bias stay in registers over a block of pixels and each source is the memory
// operand of its FMA, so that an output vector costs one instruction per tap, its store and little else
// (the tiles above reload weights and re-add, about 4 instructions per FMA over a whole layer). Ten loads
// per nine FMAs keep the two load ports about as busy as the two FMA pipes. Every output is its own sum,
// so the pixels of a block overlap in the core without a pixel tile.
constexpr int kRegisterTaps = 9;
constexpr int kRegisterBlockPixels = 8;  // each block walks all channels: sources stream in address order

template <class S, int kTaps>
struct RegisterTapsTile {
  // Tap t = r * columns + k (the contract's order) of the call's first pixel and channel.
  struct Taps {
    const typename S::T* src[kTaps];
    const typename S::T* w[kTaps];
  };

  template <int V, bool kMasked>
  struct Block {
    static_assert(V == 1, "one vector at a time");
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const GatherArgs<S>& a, const Taps& taps,
                    std::int64_t j0, std::int64_t count) {
      switch (a.activation) {  // chosen once per block, not per pixel
        case Activation::relu: return pixels<Activation::relu>(c, lanes, a, taps, j0, count);
        case Activation::leaky_relu: return pixels<Activation::leaky_relu>(c, lanes, a, taps, j0, count);
        case Activation::none: break;
      }
      pixels<Activation::none>(c, lanes, a, taps, j0, count);
    }

    template <Activation kActivation>
    static void pixels(std::int64_t c, Lanes<S, kMasked> lanes, const GatherArgs<S>& a, const Taps& taps,
                       std::int64_t j0, std::int64_t count) {
      using T = typename S::T;
      using Vec = typename S::V;
      const std::int64_t ss = a.run.src_stride, ds = a.run.dst_stride;
      constexpr int P = kRegisterBlockPixels;
      if (j0 + 2 * P <= a.run.pixels && prefetches<S>(c)) {  // the next block's last tap (its newest row), dst
        prefetch_pixels(taps.src[kTaps - 1] + (j0 + P) * ss + c, ss, P);
        prefetch_pixels(a.dst + (j0 + P) * ds + c, ds, P);
      }
      const T* src[kTaps];
      Vec wv[kTaps];
#pragma GCC unroll 9
      for (int t = 0; t < kTaps; ++t) {
        src[t] = taps.src[t] + c;
        wv[t] = lanes.load(taps.w[t] + c);
      }
      const Vec bias = bias_of(a.bias, c, lanes);
      const Vec slope = S::broadcast(&a.negative_slope);
      T* const dst = a.dst + c;
#pragma GCC unroll 2
      for (std::int64_t j = j0; j < j0 + count; ++j) {
        Vec acc = S::zero();
#pragma GCC unroll 9
        for (int t = 0; t < kTaps; ++t) acc = S::fmadd(lanes.load(src[t] + j * ss), wv[t], acc);
        lanes.store(dst + j * ds, activated<S>(S::add(acc, bias), kActivation, slope));
      }
    }
  };
};

// Pixels [j_begin, run.pixels) of the call.
template <class S, int kTaps>
void gather_register_taps(const GatherArgs<S>& a, std::int64_t j_begin) {
  using Tile = RegisterTapsTile<S, kTaps>;
  typename Tile::Taps taps;
  for (int t = 0; t < kTaps; ++t) {
    const std::int64_t r = t / a.taps.columns, k = t % a.taps.columns;
    taps.src[t] = a.taps.row_src[r] + a.taps.column_src[k];
    taps.w[t] = a.taps.row_w[r] + a.taps.column_w[k];
  }
  for (std::int64_t j0 = j_begin; j0 < a.run.pixels; j0 += kRegisterBlockPixels) {
    const std::int64_t count = std::min<std::int64_t>(kRegisterBlockPixels, a.run.pixels - j0);
    for_channel_blocks<S, 1, Tile::template Block>(a.run.channels, a, taps, j0, count);
  }
}

// gather_register_taps with kTaps = taps (1..kRegisterTaps) chosen at run time.
template <class S, int kTaps = kRegisterTaps>
void gather_register_taps_of_count(std::int64_t taps, const GatherArgs<S>& a, std::int64_t j_begin) {
  if constexpr (kTaps > 1) {
    if (taps < kTaps) return gather_register_taps_of_count<S, kTaps - 1>(taps, a, j_begin);
  }
  gather_register_taps<S, kTaps>(a, j_begin);
}

constexpr int kGeneralPixels = 4;
// 8 pixels: 8 accumulators + K weights + 1 source; 6 for K = 7, to stay within 16 registers.
constexpr int sliding_pixels(int columns) { return columns <= 5 ? 8 : 6; }

template <class S, int K>
void gather_sliding(const GatherArgs<S>& a) {
  constexpr int P = sliding_pixels(K);
  std::int64_t j = 0;
  for (; j + P <= a.run.pixels; j += P) {
    for_channel_blocks<S, 1, SlidingTile<S, P, K>::template Block>(a.run.channels, a, j);
  }
  const std::int64_t taps = a.taps.rows * K;
  if (taps > 0 && taps <= kRegisterTaps) return gather_register_taps_of_count<S>(taps, a, j);  // the last few pixels
  for (; j + kGeneralPixels <= a.run.pixels; j += kGeneralPixels) {
    for_channel_blocks<S, 1, SlidingTile<S, kGeneralPixels, K>::template Block>(a.run.channels, a, j);
  }
  for (; j < a.run.pixels; ++j) for_channel_blocks<S, 2, GeneralTile<S, 1>::template Block>(a.run.channels, a, j);
}

template <class S>
void gather(const GatherArgs<S>& a) {
  const bool consecutive = columns_are_consecutive(a.taps, a.run.src_stride);
  if (consecutive && a.taps.columns == 3 && a.run.pixels >= sliding_pixels(3)) return gather_sliding<S, 3>(a);
  const std::int64_t taps = a.taps.rows * a.taps.columns;
  if (taps > 0 && taps <= kRegisterTaps) return gather_register_taps_of_count<S>(taps, a, 0);
  if (consecutive) {
    switch (a.taps.columns) {
      case 5: return gather_sliding<S, 5>(a);
      case 7: return gather_sliding<S, 7>(a);
      default: break;
    }
  }
  std::int64_t j = 0;
  for (; j + kGeneralPixels <= a.run.pixels; j += kGeneralPixels) {
    for_channel_blocks<S, 2, GeneralTile<S, kGeneralPixels>::template Block>(a.run.channels, a, j);
  }
  for (; j < a.run.pixels; ++j) for_channel_blocks<S, 2, GeneralTile<S, 1>::template Block>(a.run.channels, a, j);
}

template <class S>
void dwconv_forward(const DwconvRun& run, const DwconvTaps<typename S::T, const typename S::T>& taps,
                    const typename S::T* bias, Activation activation, typename S::T negative_slope,
                    typename S::T* y) noexcept {
  if (run.multiplier != 1) {
    return dwconv_reference_ukernel<typename S::T>().forward(run, taps, bias, activation, negative_slope, y);
  }
  gather<S>({run, taps, bias, activation, negative_slope, y});
}

template <class S>
void dwconv_backward_data(const DwconvRun& run, const DwconvTaps<typename S::T, const typename S::T>& taps,
                          typename S::T* dx) noexcept {
  if (run.multiplier != 1) return dwconv_reference_ukernel<typename S::T>().backward_data(run, taps, dx);
  gather<S>({run, taps, nullptr, Activation::none, 0, dx});
}

// ---- backward weights: dw_t[c] += sum_j x_t[j, c] * dy[j, c], db[c] += sum_j dy[j, c] ----------------
//
// Within a pixel tile, each tap's sum over the tile's pixels stays in registers, then joins dw_t.

constexpr int kWeightTilePixels = 16;

template <class S>
struct WeightArgs {
  const DwconvRun& run;
  const DwconvTaps<typename S::T, typename S::T>& taps;
  const typename S::T* dy;
  typename S::T* db;  // may be null
};

// The bias gradient of V vectors, summed by the pass that already loads dy when kBias.
template <class S, int V, bool kBias, bool kMasked>
struct BiasSums {
  typename S::V sum[V];
  BiasSums() {
    for (int v = 0; v < V; ++v) sum[v] = S::zero();
  }
  void add(int v, typename S::V dy) {
    if constexpr (kBias) sum[v] = S::add(sum[v], dy);
  }
  void store(typename S::T* db, std::int64_t c, Lanes<S, kMasked> lanes) const {
    if constexpr (kBias) {
      for (int v = 0; v < V; ++v) lanes.store(db + c + v * S::lanes, S::add(lanes.load(db + c + v * S::lanes), sum[v]));
    }
  }
};

// General: the flat taps [t0, t0 + G) (t = r * columns + k) of one vector over pixels [j0, j0 + count).
template <class S, int G, bool kBias, bool kMasked>
inline void weight_taps(const WeightArgs<S>& a, std::int64_t j0, std::int64_t count, std::int64_t t0, std::int64_t c,
                        Lanes<S, kMasked> lanes) {
  using T = typename S::T;
  using Vec = typename S::V;
  const auto& taps = a.taps;
  const std::int64_t ss = a.run.src_stride, ds = a.run.dst_stride;
  const T* x[G > 0 ? G : 1];
  T* dw[G > 0 ? G : 1];
  Vec acc[G > 0 ? G : 1];
  for (int g = 0; g < G; ++g) {
    const std::int64_t r = (t0 + g) / taps.columns, k = (t0 + g) % taps.columns;
    x[g] = taps.row_src[r] + taps.column_src[k] + j0 * ss + c;
    dw[g] = taps.row_w[r] + taps.column_w[k] + c;
    acc[g] = S::zero();
  }
  BiasSums<S, 1, kBias, kMasked> bias;
  const T* const dy = a.dy + j0 * ds + c;
  for (std::int64_t j = 0; j < count; ++j) {
    const Vec d = lanes.load(dy + j * ds);
    for (int g = 0; g < G; ++g) acc[g] = S::fmadd(lanes.load(x[g] + j * ss), d, acc[g]);
    bias.add(0, d);
  }
  for (int g = 0; g < G; ++g) lanes.store(dw[g], S::add(lanes.load(dw[g]), acc[g]));
  bias.store(a.db, c, lanes);
}

constexpr int kWeightTapsPerPass = 9;  // 9 accumulators + the bias's + dy + x: 12 of 16 registers

// weight_taps with G = count (0..kWeightTapsPerPass) chosen at run time.
template <class S, bool kBias, bool kMasked, int G = kWeightTapsPerPass>
inline void weight_taps_of_count(std::int64_t taps, const WeightArgs<S>& a, std::int64_t j0, std::int64_t count,
                                 std::int64_t t0, std::int64_t c, Lanes<S, kMasked> lanes) {
  if constexpr (G > 0) {
    if (taps < G) return weight_taps_of_count<S, kBias, kMasked, G - 1>(taps, a, j0, count, t0, c, lanes);
  }
  weight_taps<S, G, kBias, kMasked>(a, j0, count, t0, c, lanes);
}

template <class S>
struct GeneralWeights {
  template <int V, bool kMasked>
  struct Block {
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const WeightArgs<S>& a, std::int64_t j0,
                    std::int64_t count) {
      static_assert(V == 1, "one vector at a time");
      const std::int64_t taps = a.taps.rows * a.taps.columns;
      // The first pass also sums the bias gradient (alone, when there are no taps).
      const std::int64_t first = std::min<std::int64_t>(taps, kWeightTapsPerPass);
      if (a.db) weight_taps_of_count<S, true>(first, a, j0, count, 0, c, lanes);
      else weight_taps_of_count<S, false>(first, a, j0, count, 0, c, lanes);
      for (std::int64_t t0 = first; t0 < taps; t0 += kWeightTapsPerPass) {
        const std::int64_t pass = std::min<std::int64_t>(taps - t0, kWeightTapsPerPass);
        weight_taps_of_count<S, false>(pass, a, j0, count, t0, c, lanes);
      }
    }
  };
};

// Sliding: one row's K consecutive columns for V vectors over pixels [j0, j0 + count). window[k] holds
// the sources of pixel j + k, so each pixel loads one new source and one dy per vector for K FMAs.
template <class S, int K, int V, bool kBias, bool kMasked>
inline void weight_row_sliding(const WeightArgs<S>& a, std::int64_t j0, std::int64_t count, std::int64_t r,
                               std::int64_t c, Lanes<S, kMasked> lanes) {
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes;
  const auto& taps = a.taps;
  const std::int64_t ss = a.run.src_stride, ds = a.run.dst_stride;
  const T* const x = taps.row_src[r] + taps.column_src[0] + j0 * ss + c;
  const T* const dy = a.dy + j0 * ds + c;
  Vec acc[K][V], window[K][V];
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      acc[k][v] = S::zero();
      if (k + 1 < K) window[k][v] = lanes.load(x + k * ss + v * L);
    }
  }
  BiasSums<S, V, kBias, kMasked> bias;
  for (std::int64_t j = 0; j < count; ++j) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      window[K - 1][v] = lanes.load(x + (j + K - 1) * ss + v * L);
      const Vec d = lanes.load(dy + j * ds + v * L);
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) acc[k][v] = S::fmadd(window[k][v], d, acc[k][v]);
      bias.add(v, d);
#pragma GCC unroll 8
      for (int k = 0; k + 1 < K; ++k) window[k][v] = window[k + 1][v];
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    T* const dw = taps.row_w[r] + taps.column_w[k] + c;
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) lanes.store(dw + v * L, S::add(lanes.load(dw + v * L), acc[k][v]));
  }
  bias.store(a.db, c, lanes);
}

template <class S, int K>
struct SlidingWeights {
  template <int V, bool kMasked>
  struct Block {
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const WeightArgs<S>& a, std::int64_t j0,
                    std::int64_t count) {
      constexpr int P = kWeightTilePixels;
      if (j0 + 2 * P <= a.run.pixels && (V == 2 || prefetches<S>(c))) {  // the next tile's new pixels, dy
        const auto& taps = a.taps;
        const std::int64_t ss = a.run.src_stride, ds = a.run.dst_stride;
        prefetch_pixels(taps.row_src[taps.rows - 1] + taps.column_src[0] + (j0 + P + K - 1) * ss + c, ss, P);
        prefetch_pixels(a.dy + (j0 + P) * ds + c, ds, P);
      }
      for (std::int64_t r = 0; r < a.taps.rows; ++r) {
        if (r == 0 && a.db) weight_row_sliding<S, K, V, true>(a, j0, count, r, c, lanes);
        else weight_row_sliding<S, K, V, false>(a, j0, count, r, c, lanes);
      }
    }
  };
};

// Tiles of kWeightTilePixels pixels, each across every channel block of Body.
template <class S, int kVectors, template <int, bool> class Body>
void weight_tiles(const WeightArgs<S>& a) {
  for (std::int64_t j0 = 0; j0 < a.run.pixels; j0 += kWeightTilePixels) {
    const std::int64_t count = std::min<std::int64_t>(kWeightTilePixels, a.run.pixels - j0);
    for_channel_blocks<S, kVectors, Body>(a.run.channels, a, j0, count);
  }
}

template <class S>
void dwconv_backward_weights(const DwconvRun& run, const DwconvTaps<typename S::T, typename S::T>& taps,
                             const typename S::T* dy, typename S::T* db) noexcept {
  if (run.multiplier != 1) return dwconv_reference_ukernel<typename S::T>().backward_weights(run, taps, dy, db);
  const WeightArgs<S> a{run, taps, dy, db};
  if (taps.rows > 0 && columns_are_consecutive(taps, run.src_stride)) {
    switch (taps.columns) {  // two vectors for K = 3: 6 accumulators + 6 window + 2 dy registers
      case 3: return weight_tiles<S, 2, SlidingWeights<S, 3>::template Block>(a);
      case 5: return weight_tiles<S, 1, SlidingWeights<S, 5>::template Block>(a);
      case 7: return weight_tiles<S, 1, SlidingWeights<S, 7>::template Block>(a);
      default: break;
    }
  }
  weight_tiles<S, 1, GeneralWeights<S>::template Block>(a);
}

template <class S>
constexpr DwconvUkernel<typename S::T> dwconv_kernel(const char* name) {
  return {name, Isa::avx2_fma, dwconv_forward<S>, dwconv_backward_data<S>, dwconv_backward_weights<S>};
}

}  // namespace convkit::avx2
