// The activations convkit fuses into the pass that writes an op's output (GEMM, convolution).
#pragma once

namespace convkit {

enum class Activation { none, relu, leaky_relu };

template <class T>
T activate(T v, Activation activation, T negative_slope) {
  switch (activation) {
    case Activation::none: return v;
    case Activation::relu: return v < T(0) ? T(0) : v;  // written so that NaN stays NaN
    case Activation::leaky_relu: return v < T(0) ? v * negative_slope : v;
  }
  return v;
}

}  // namespace convkit
