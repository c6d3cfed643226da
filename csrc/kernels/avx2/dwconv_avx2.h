// AVX2/FMA depthwise kernels (the contract is in kernels/dwconv_ukernel.h), vectorised over channels.
//
// Forward and backward data (a gather, identical for m == 1): a tile of 4 pixels x 2 vectors (4 x 16
// floats, 4 x 8 doubles) keeps 8 accumulators in registers while it walks the taps; each tap loads its
// weight vectors once for the 4 pixels. Backward weights: per channel vector, up to 9 taps accumulate in
// registers while the run's pixels stream past, so each dy vector loaded serves 9 FMAs (and the bias
// gradient). Channel tails use masked loads and stores, with the same per-lane arithmetic as full
// vectors, so a channel's result does not depend on where a call's channel range starts. A channel
// multiplier above 1 falls back to the reference loops.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/avx2/simd_avx2.h"
#include "kernels/dwconv_ukernel.h"
#include "kernels/ref/dwconv_ref.h"

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

// Calls body(c, lanes) for channel blocks of `vectors` full vectors, then single vectors, then a masked tail;
// body is a functor template over (vectors, masked).
template <class S, template <int, bool> class Body, class... Args>
void for_channel_blocks(std::int64_t channels, Args&&... args) {
  constexpr int L = S::lanes;
  std::int64_t c = 0;
  for (; c + 2 * L <= channels; c += 2 * L) Body<2, false>::run(c, Lanes<S, false>{}, args...);
  for (; c + L <= channels; c += L) Body<1, false>::run(c, Lanes<S, false>{}, args...);
  if (c < channels) Body<1, true>::run(c, Lanes<S, true>{S::first_lanes(channels - c)}, args...);
}

// ---- forward / backward data: dst[j, c] = act(init[c] + sum_t src_t[j, c] * w_t[c]) ----------------

constexpr int kGatherPixels = 4;

template <class S>
struct GatherArgs {
  const DwconvRun& run;
  std::int64_t taps;
  const typename S::T* const* src;
  const typename S::T* const* w;
  const typename S::T* bias;  // null: start from zero
  Activation activation;
  typename S::T negative_slope;
  typename S::T* dst;
};

template <class S, int P, int V, bool kMasked>
inline void gather_tile(const GatherArgs<S>& a, std::int64_t j, std::int64_t c, Lanes<S, kMasked> lanes) {
  static_assert(!kMasked || V == 1, "only a single vector is masked");
  using T = typename S::T;
  using Vec = typename S::V;
  constexpr int L = S::lanes;
  // Locals, not reads through `a`: the stores to dst could alias it as far as the compiler knows.
  const std::int64_t taps = a.taps, ss = a.run.src_stride, ds = a.run.dst_stride;
  const T* const* const src = a.src;
  const T* const* const w = a.w;
  const Activation activation = a.activation;
  Vec acc[P][V];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[p][v] = S::zero();
  }
  for (std::int64_t t = 0; t < taps; ++t) {
    const T* x = src[t] + j * ss + c;
    Vec wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = lanes.load(w[t] + c + v * L);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[p][v] = S::fmadd(lanes.load(x + p * ss + v * L), wv[v], acc[p][v]);
    }
  }
  T* const dst = a.dst + j * ds + c;
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const Vec bias = a.bias ? lanes.load(a.bias + c + v * L) : S::zero();
    const Vec slope = S::broadcast(&a.negative_slope);
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) {
      Vec out = S::add(acc[p][v], bias);
      if (activation == Activation::relu) out = S::max(S::zero(), out);  // NaN stays NaN
      if (activation == Activation::leaky_relu) out = S::less_select(out, S::mul(out, slope), out);
      lanes.store(dst + p * ds + v * L, out);
    }
  }
}

// One pixel tile (P pixels from j) across all channels: consecutive tiles then read x and write y
// sequentially, which the hardware prefetchers follow.
template <class S, int P>
struct GatherTile {
  template <int V, bool kMasked>
  struct Block {
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const GatherArgs<S>& a, std::int64_t j) {
      gather_tile<S, P, V>(a, j, c, lanes);
    }
  };
};

template <class S>
void gather(const GatherArgs<S>& a) {
  std::int64_t j = 0;
  for (; j + kGatherPixels <= a.run.pixels; j += kGatherPixels) {
    for_channel_blocks<S, GatherTile<S, kGatherPixels>::template Block>(a.run.channels, a, j);
  }
  for (; j < a.run.pixels; ++j) for_channel_blocks<S, GatherTile<S, 1>::template Block>(a.run.channels, a, j);
}

template <class S>
void dwconv_forward(const DwconvRun& run, std::int64_t taps, const typename S::T* const* x,
                    const typename S::T* const* w, const typename S::T* bias, Activation activation,
                    typename S::T negative_slope, typename S::T* y) noexcept {
  if (run.multiplier != 1) return dwconv_forward_ref(run, taps, x, w, bias, activation, negative_slope, y);
  gather<S>({run, taps, x, w, bias, activation, negative_slope, y});
}

template <class S>
void dwconv_backward_data(const DwconvRun& run, std::int64_t taps, const typename S::T* const* dy,
                          const typename S::T* const* w, typename S::T* dx) noexcept {
  if (run.multiplier != 1) return dwconv_backward_data_ref(run, taps, dy, w, dx);
  gather<S>({run, taps, dy, w, nullptr, Activation::none, 0, dx});
}

// ---- backward weights: dw_t[c] += sum_j x_t[j, c] * dy[j, c], db[c] += sum_j dy[j, c] ----------------

constexpr int kWeightTapsPerPass = 9;  // 9 accumulators + the bias's + dy + x: 12 of 16 registers

template <class S>
struct WeightArgs {
  const DwconvRun& run;
  std::int64_t taps;
  const typename S::T* const* x;
  const typename S::T* dy;
  typename S::T* const* dw;
  typename S::T* db;
};

// Taps [t0, t0 + G) of one channel vector, and the bias gradient when kBias.
template <class S, int G, bool kBias, bool kMasked>
inline void weight_taps(const WeightArgs<S>& a, std::int64_t t0, std::int64_t c, Lanes<S, kMasked> lanes) {
  using T = typename S::T;
  using Vec = typename S::V;
  const T* x[G > 0 ? G : 1];
  Vec acc[G > 0 ? G : 1];
  for (int g = 0; g < G; ++g) {
    x[g] = a.x[t0 + g] + c;
    acc[g] = S::zero();
  }
  Vec bias_acc = S::zero();
  const T* dy = a.dy + c;
  for (std::int64_t j = 0; j < a.run.pixels; ++j) {
    const Vec d = lanes.load(dy + j * a.run.dst_stride);
    const std::int64_t at = j * a.run.src_stride;
    for (int g = 0; g < G; ++g) acc[g] = S::fmadd(lanes.load(x[g] + at), d, acc[g]);
    if constexpr (kBias) bias_acc = S::add(bias_acc, d);
  }
  for (int g = 0; g < G; ++g) {
    T* dw = a.dw[t0 + g] + c;
    lanes.store(dw, S::add(lanes.load(dw), acc[g]));
  }
  if constexpr (kBias) lanes.store(a.db + c, S::add(lanes.load(a.db + c), bias_acc));
}

// weight_taps with G = count (0..kWeightTapsPerPass) chosen at run time.
template <class S, bool kBias, bool kMasked, int G = kWeightTapsPerPass>
inline void weight_taps_of_count(std::int64_t count, const WeightArgs<S>& a, std::int64_t t0, std::int64_t c,
                                 Lanes<S, kMasked> lanes) {
  if constexpr (G > 0) {
    if (count < G) return weight_taps_of_count<S, kBias, kMasked, G - 1>(count, a, t0, c, lanes);
  }
  weight_taps<S, G, kBias, kMasked>(a, t0, c, lanes);
}

template <class S>
struct WeightChannels {
  template <int V, bool kMasked>
  struct Block {
    static void run(std::int64_t c, Lanes<S, kMasked> lanes, const WeightArgs<S>& a) {
      for (int v = 0; v < V; ++v, c += S::lanes) {
        // The first pass also sums the bias gradient (alone, when there are no taps).
        const std::int64_t first = std::min<std::int64_t>(a.taps, kWeightTapsPerPass);
        if (a.db) weight_taps_of_count<S, true>(first, a, 0, c, lanes);
        else weight_taps_of_count<S, false>(first, a, 0, c, lanes);
        for (std::int64_t t0 = first; t0 < a.taps; t0 += kWeightTapsPerPass) {
          weight_taps_of_count<S, false>(std::min<std::int64_t>(a.taps - t0, kWeightTapsPerPass), a, t0, c, lanes);
        }
      }
    }
  };
};

template <class S>
void dwconv_backward_weights(const DwconvRun& run, std::int64_t taps, const typename S::T* const* x,
                             const typename S::T* dy, typename S::T* const* dw, typename S::T* db) noexcept {
  if (run.multiplier != 1) return dwconv_backward_weights_ref(run, taps, x, dy, dw, db);
  const WeightArgs<S> args{run, taps, x, dy, dw, db};
  for_channel_blocks<S, WeightChannels<S>::template Block>(run.channels, args);
}

template <class S>
constexpr DwconvUkernel<typename S::T> dwconv_kernel(const char* name) {
  return {name, Isa::avx2_fma, dwconv_forward<S>, dwconv_backward_data<S>, dwconv_backward_weights<S>};
}

}  // namespace convkit::avx2
