// The direct-convolution microkernel contract, for convolutions with few channels (channels-last,
// groups == 1): no im2col, each output tile stays in registers across all taps and input channels.
//
// A call covers a run of `pixels` destination pixels of one destination row. Its taps are laid out as the
// depthwise kernels' (kernels/dwconv_ukernel.h): every pair of a row r (a source row pointer and a weight
// pointer) and a column k (element offsets added to both), rows then columns. Tap t of pixel j reads the
// C source values src_t[j] = row_src[r] + column_src[k] + j * src_stride and the packed weight block
// w_t = row_w[r] + column_w[k]: C rows of w_ld values, the first F of each used, the rest zero.
//
//   forward           dst[j, f]       = act(sum_t sum_c src_t[j, c] * w_t[c * w_ld + f] + bias[f])
//   backward weights  dw_t[c*w_ld + f] += sum_j src_t[j, c] * dy[j * dst_stride + f]
//                     db[f]           += sum_j dy[j * dst_stride + f]            (db may be null)
//
// Every sum runs over the taps in order, then the
// channels in order, the bias added last; backward weights sums a call's pixels in order from zero and
// adds the total to dw_t (lanes past F of a packed row may be written: nobody reads them). So a value depends only on the
// taps and runs the driver passes, never on how a kernel tiles pixels or channels. Zero taps is allowed
// (dst = act(bias)). No allocation, no threads, no shape logic.
#pragma once
#include <cstdint>

#include "core/activation.h"
#include "core/cpu_features.h"
#include "kernels/dwconv_ukernel.h"

namespace convkit {

// Packed weight rows (w_ld) are a multiple of this many elements, so that kernels load whole vectors.
constexpr std::int64_t kDconvRowAlign = 16;

struct DconvRun {
  std::int64_t pixels;
  std::int64_t in_channels;   // C: values read per source pixel and tap
  std::int64_t out_channels;  // F: values written per destination pixel
  std::int64_t src_stride, dst_stride;  // elements between consecutive pixels of the run
  std::int64_t w_ld;                    // elements between packed weight rows: a multiple of kDconvRowAlign
};

// The depthwise kernels' tap table; Weight is const T (w) or T (dw, which backward weights adds into).
template <class T, class Weight>
using DconvTaps = DwconvTaps<T, Weight>;

template <class T>
using DconvForwardFn = void (*)(const DconvRun& run, const DconvTaps<T, const T>& taps, const T* bias,
                                Activation activation, T negative_slope, T* dst) noexcept;
template <class T>
using DconvBackwardWeightsFn = void (*)(const DconvRun& run, const DconvTaps<T, T>& taps, const T* dy,
                                        T* db) noexcept;

template <class T>
struct DconvUkernel {
  const char* name;  // dtype-family-tile-isa; tile = pixels x output channels of its widest register block
  Isa isa;
  DconvForwardFn<T> forward;
  DconvBackwardWeightsFn<T> backward_weights;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const DconvUkernel<float> f32_dconv_1x1_ref;
extern const DconvUkernel<double> f64_dconv_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const DconvUkernel<float> f32_dconv_6x16_avx2;
extern const DconvUkernel<double> f64_dconv_6x8_avx2;
#endif

}  // namespace convkit
