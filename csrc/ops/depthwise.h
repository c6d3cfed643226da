// Depthwise convolution (groups == in_channels > 1, any channel multiplier) by direct kernels, without
// im2col. The entry points have the contracts of ops/conv.h's and are reached through them: conv_forward,
// conv_backward_data and conv_backward_weights route here once check_geometry(g) has passed.
#pragma once
#include "ops/conv.h"

namespace convkit {

bool is_depthwise(const ConvGeometry& g);

template <class T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                       T negative_slope);

template <class T>
void depthwise_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx);

template <class T>
void depthwise_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db);

}  // namespace convkit
