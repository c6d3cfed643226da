// Elementwise activations and PReLU, forward and backward, on contiguous arrays.
//
// Shape legend: pointwise ops see x, y, dy, dx as flat arrays of n values. PReLU sees them as (R, C): R rows
// of C channels, the slope being (C,) (one per channel) or (1,) (shared).
//
//   relu          y = max(x, 0)                                 dx = dy * [y > 0]                    (from y)
//   clipped_relu  y = min(max(x, 0), alpha)   (alpha > 0)       dx = dy * [0 < y < alpha]            (from y)
//                   (relu6 is alpha = 6, MobileNet v1/v2)
//   leaky_relu    y = x > 0 ? x : alpha * x       (alpha >= 0)  dx = dy * (y > 0 ? 1 : alpha)        (from y)
//   elu           y = x > 0 ? x : alpha * expm1(x) (alpha >= 0) dx = dy * (y > 0 ? 1 : y + alpha)   (from y)
//   sigmoid       y = 1 / (1 + exp(-x))                         dx = dy * y * (1 - y)                (from y)
//   tanh          y = tanh(x)                                   dx = dy * (1 - y^2)                  (from y)
//   linear        y = x                                         dx = dy                              (from y)
//   gelu          y = x * Phi(x) = x / 2 * erfc(-x / sqrt 2)    dx = dy * (Phi(x) + x * phi(x))      (from x)
//   gelu_tanh     y = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
//                   (= x / 2 * (1 + tanh u))                    dx = dy * (s + 2 x s (1 - s) u')     (from x)
//   hard_sigmoid  y = relu6(x + 3) / 6                          dx = dy / 6 on -3 < x < 3, else 0    (from x)
//   hard_swish    y = x * relu6(x + 3) / 6                      dx = dy * (x < -3 ? 0 : x <= 3 ? (2x + 3) / 6 : 1)
//   prelu         y[r, c] = x > 0 ? x : slope[c] * x            dx = dy * (x > 0 ? 1 : slope[c]),
//                                                               dslope[c] = sum_r dy * min(x, 0)     (from x)
//
// Kinks take the left side's slope (clipped_relu: 0 at both, as PyTorch's relu6). NaN in x (or y) gives NaN in y and dx. Arithmetic is in double, rounded
// once to T. Forward passes may run in place (y == x) and backward passes may write dx over dy: each
// element is read before it is written. Every result is independent of the thread count, bit for bit.
#pragma once
#include <cstdint>

namespace convkit {

enum class Pointwise { linear, relu, clipped_relu, leaky_relu, elu, sigmoid, tanh, gelu, gelu_tanh, hard_sigmoid, hard_swish };

template <class T>
void pointwise_forward(Pointwise op, double alpha, std::int64_t n, const T* x, T* y);

// `saved` is the forward's output y or its input x, as the table above says.
template <class T>
void pointwise_backward(Pointwise op, double alpha, std::int64_t n, const T* dy, const T* saved, T* dx);

// slope_count is channels (a slope per channel) or 1 (shared). Throws std::invalid_argument otherwise.
template <class T>
void prelu_forward(std::int64_t rows, std::int64_t channels, const T* x, const T* slope, std::int64_t slope_count,
                   T* y);

// dslope (slope_count values) is summed in double in an order fixed by the shape.
template <class T>
void prelu_backward(std::int64_t rows, std::int64_t channels, const T* dy, const T* x, const T* slope,
                    std::int64_t slope_count, T* dx, T* dslope);

}  // namespace convkit
