// The activations convkit fuses into the pass that writes an op's output (GEMM, convolution), and their
// derivatives, which the standalone activation ops (ops/activation.h) share so that relu and leaky_relu
// mean the same thing everywhere.
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

// dx for the output gradient dy, from the output y = activate(x) (negative_slope >= 0, so that y > 0
// exactly when x > 0). At the kink x = 0 the slope is the negative side's (0 for relu), as in PyTorch. A NaN
// y gives a NaN dx.
template <class T>
T activate_gradient(T dy, T y, Activation activation, T negative_slope) {
  if (activation == Activation::none || y > T(0)) return dy;
  if (y != y) return y;
  return activation == Activation::relu ? T(0) : dy * negative_slope;
}

}  // namespace convkit
