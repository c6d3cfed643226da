// The depthwise-convolution microkernel contract (channels-last, channel multiplier m: output channel
// c*m + q reads input channel c only).
//
// One call covers a run of `pixels` destination pixels and `channels` input channels (every pointer is
// already at the run's first pixel and first channel; output channels are c*m + q, c < channels).
// Destination pixel j lives at dst + j * dst_stride. A tap is one kernel offset; the call's taps are
// every pair of a row r (its (kd, kh) part: a source pointer and a weight pointer) and a column k (its kw
// part: element offsets added to both). Tap (r, k) of pixel j reads
//
//   x_t[j] = row_src[r] + column_src[k] + j * src_stride        w_t = row_w[r] + column_w[k]
//
// and the kernels compute, t running over rows then columns:
//
//   forward           y[j, c*m+q]  = act(bias[c*m+q] + sum_t x_t[j, c] * w_t[c*m+q])
//   backward data     dx[j, c]     = sum_t sum_q dy_t[j, c*m+q] * w_t[c*m+q]
//   backward weights  dw_t[c*m+q] += sum_j x_t[j, c] * dy[j, c*m+q]       db[c*m+q] += sum_j dy[j, c*m+q]
//
// Backward data is the forward gather with the roles swapped (dy is its source, dx its destination; for
// m == 1 the two are the same sum); in backward weights dy is the destination side and row_w points into
// dw. Zero taps is allowed: y = act(bias), dx = 0.
//
// Every sum runs over the taps in that order (whether the bias joins first or last is the kernel's
// choice), and backward weights adds a call's pixels to dw_t in pixel order (in blocks of the kernel's
// choosing, each summed first), so a value depends on the taps and runs the driver passes, never on how
// it splits channels between calls. No
// allocation, no threads, no shape logic: the driver (ops/depthwise.cc) maps padding, lists the taps
// and splits the work.
#pragma once
#include <cstdint>

#include "core/activation.h"
#include "core/cpu_features.h"

namespace convkit {

// Where one call's pixels and channels lie: strides are in elements, between consecutive pixels.
struct DwconvRun {
  std::int64_t pixels, channels, multiplier;
  std::int64_t src_stride, dst_stride;
};

// Weight is const T (w) or T (dw, which backward weights accumulates into).
template <class T, class Weight>
struct DwconvTaps {
  std::int64_t rows, columns;
  const T* const* row_src;
  Weight* const* row_w;
  const std::int64_t* column_src;
  const std::int64_t* column_w;
};

template <class T>
using DwconvForwardFn = void (*)(const DwconvRun& run, const DwconvTaps<T, const T>& taps, const T* bias,
                                 Activation activation, T negative_slope, T* y) noexcept;
template <class T>
using DwconvBackwardDataFn = void (*)(const DwconvRun& run, const DwconvTaps<T, const T>& taps, T* dx) noexcept;
template <class T>
using DwconvBackwardWeightsFn = void (*)(const DwconvRun& run, const DwconvTaps<T, T>& taps, const T* dy,
                                         T* db) noexcept;

template <class T>
struct DwconvUkernel {
  const char* name;  // dtype-family-tile-isa; tile = pixels x channels of its main register block
  Isa isa;
  DwconvForwardFn<T> forward;
  DwconvBackwardDataFn<T> backward_data;
  DwconvBackwardWeightsFn<T> backward_weights;  // db may be null
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const DwconvUkernel<float> f32_dwconv_1x1_ref;
extern const DwconvUkernel<double> f64_dwconv_1x1_ref;
// The reference kernel of dtype T, for the SIMD kernels' fallbacks: they call it, never its templates, so
// that no code compiled for their ISA can stand in for the reference (one definition of each template).
template <class T>
const DwconvUkernel<T>& dwconv_reference_ukernel();
#if CONVKIT_HAVE_AVX2
extern const DwconvUkernel<float> f32_dwconv_8x8_avx2;
extern const DwconvUkernel<double> f64_dwconv_8x4_avx2;
#endif

}  // namespace convkit
