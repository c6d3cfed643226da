// Direct convolution for few channels (channels-last, groups == 1): no im2col, the output tile kept in
// registers across all taps and input channels (kernels/dconv_ukernel.h). conv.cc sends the shapes that
// takes_direct_conv accepts here; everything else goes through im2col + GEMM.
#pragma once
#include "ops/conv.h"

namespace convkit {

// True where the direct kernels beat im2col + GEMM: one group and at most 16 input and output channels
// (one or two vectors of outputs: the GEMM's 16-wide tile is mostly idle, and its packing of every
// source value once per tap is most of its work).
bool takes_direct_conv(const ConvGeometry& g);

// The same contracts as conv_forward and conv_backward_weights (ops/conv.h); the geometry has been
// checked. Backward data stays with im2col + GEMM (col2im), which measured faster on these shapes.
template <class T>
void direct_conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                         T negative_slope);
template <class T>
void direct_conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db);

}  // namespace convkit
