// The activations convkit fuses into the pass that writes an op's output (GEMM, convolution), and their
// derivatives, which the standalone activation ops (ops/activation.h) share so that relu and leaky_relu
// mean the same thing everywhere.
//
// gcc keeps a possibly trapping multiply inside the arm of a conditional, so `v < 0 ? v * slope : v` would
// compile to a branch per value (and a misprediction for every other one on random signs). The forms below
// select between values only, or multiply unconditionally, so that loops over them vectorise.
#pragma once
#include "core/host_device.h"

namespace convkit {

enum class Activation { none, relu, leaky_relu };

template <class T>
CONVKIT_HOST_DEVICE T activate(T v, Activation activation, T negative_slope) {
  switch (activation) {
    case Activation::none: return v;
    case Activation::relu: return v < T(0) ? T(0) : v;  // written so that NaN stays NaN
    // max(v, 0) + slope * min(v, 0), both written so that NaN stays NaN; exact, and -0 stays -0.
    case Activation::leaky_relu: return (v < T(0) ? T(0) : v) + negative_slope * (T(0) < v ? T(0) : v);
  }
  return v;
}

// dx for the output gradient dy, from the output y = activate(x) (negative_slope >= 0, so that y > 0
// exactly when x > 0). At the kink x = 0 the slope is the negative side's (0 for relu), as in PyTorch. A NaN
// y gives a NaN dx.
template <class T>
CONVKIT_HOST_DEVICE T activate_gradient(T dy, T y, Activation activation, T negative_slope) {
  switch (activation) {
    case Activation::none: return dy;
    case Activation::relu: return y > T(0) ? dy : (y != y ? y : T(0));
    case Activation::leaky_relu: return dy * (y > T(0) ? T(1) : (y != y ? y : negative_slope));
  }
  return dy;
}

}  // namespace convkit
