// N-d convolution (rank 1..3), channels-last, by im2col + GEMM.
#pragma once
#include <array>
#include <cstdint>

#include "ops/gemm.h"

namespace convkit {

enum class PaddingMode { zeros, reflect, replicate, circular };

// Shapes and options of one convolution, spatial axes padded to 3 with leading size-1 axes, so that one
// code path serves 1-D, 2-D and 3-D. The Python layer (convkit/conv_spec.py) has validated them.
//
//   x: (batch, in[0], in[1], in[2], in_channels)              contiguous
//   w: (kernel[0], kernel[1], kernel[2], in_channels / groups, out_channels)   contiguous
//   y: (batch, out[0], out[1], out[2], out_channels)          contiguous
struct ConvGeometry {
  std::int64_t batch, in_channels, out_channels, groups;
  std::array<std::int64_t, 3> in, out, kernel, stride, dilation, pad_before;
  PaddingMode mode;
};

// Throws std::invalid_argument unless every size is positive (batch may be 0), groups divide both channel
// counts, and every coordinate the padding mode maps lies inside x: the last guard between a direct
// caller of convkit._C and an out-of-bounds read.
void check_geometry(const ConvGeometry& g);

// y = act(conv(x, w) + bias); bias: (out_channels,) or null. Calls check_geometry first.
template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                  T negative_slope);

// dx = the gradient of sum(dy * conv(x, w)) with respect to x (overwritten). With zero padding this is
// also the transposed convolution of dy. dy has y's shape, dx x's shape.
template <class T>
void conv_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx);

// dw (overwritten) = the gradient with respect to w; db (overwritten, may be null) = dy summed over every
// output pixel. Both are independent of the thread count, bit for bit.
template <class T>
void conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db);

}  // namespace convkit
