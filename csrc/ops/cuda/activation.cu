// Elementwise ops on the GPU: the pointwise activations (ops/activation.h's formulas, in double rounded
// once), dropout with the CPU's Philox stream (the same mask bits), y += alpha * x, and the fused
// SGD-momentum update (ops/optim.h's arithmetic in T). Built with --fmad=false, so that no multiply-add is contracted and
// products round as on the CPU.
#include <cmath>

#include "core/cuda/check.cuh"
#include "core/philox.h"
#include "ops/cuda/device_ops.h"

namespace convkit::cuda {
namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440, kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794, kGeluCubic = 0.044715;

__device__ inline double relu6_of_x_plus_3(double x) {
  const double r = x + 3.0;
  return r < 0.0 ? 0.0 : (r > 6.0 ? 6.0 : r);
}

__device__ inline double sigmoid_of(double t) {
  const double e = exp(-fabs(t));
  return (t >= 0.0 ? 1.0 : e) / (1.0 + e);
}

__device__ inline double forward_value(Pointwise op, double x, double alpha) {
  switch (op) {
    case Pointwise::linear: return x;
    case Pointwise::relu: return activate(x, Activation::relu, 0.0);
    case Pointwise::clipped_relu: {
      const double r = x < 0.0 ? 0.0 : x;
      return r > alpha ? alpha : r;
    }
    case Pointwise::leaky_relu: return activate(x, Activation::leaky_relu, alpha);
    case Pointwise::elu: return (x < 0.0 ? 0.0 : x) + alpha * expm1(x < 0.0 ? x : 0.0);
    case Pointwise::sigmoid: return sigmoid_of(x);
    case Pointwise::tanh: return tanh(x);
    case Pointwise::gelu: {
      const double p = 0.5 * erfc(-x * kSqrt1_2);
      return p == 0.0 ? 0.0 : x * p;
    }
    case Pointwise::gelu_tanh: {
      const double clamped = x < -1.7976931348623157e308 ? -1.7976931348623157e308 : x;
      return clamped * sigmoid_of(2.0 * kSqrt2OverPi * (x + kGeluCubic * x * x * x));
    }
    case Pointwise::hard_sigmoid: return relu6_of_x_plus_3(x) / 6.0;
    case Pointwise::hard_swish: return (x < -3.0 ? -3.0 : x) * relu6_of_x_plus_3(x) / 6.0;
  }
  return x;
}

// `saved` is y or x as ops/activation.h's table says.
__device__ inline double backward_value(Pointwise op, double dy, double saved, double alpha) {
  switch (op) {
    case Pointwise::linear: return dy;
    case Pointwise::relu: return activate_gradient(dy, saved, Activation::relu, 0.0);
    case Pointwise::clipped_relu: return saved > 0.0 && saved < alpha ? dy : (saved != saved ? saved : 0.0);
    case Pointwise::leaky_relu: return activate_gradient(dy, saved, Activation::leaky_relu, alpha);
    case Pointwise::elu: return dy * (saved > 0.0 ? 1.0 : saved + alpha);
    case Pointwise::sigmoid: return dy * (saved * (1.0 - saved));
    case Pointwise::tanh: return dy * (1.0 - saved * saved);
    case Pointwise::gelu: {
      const double cdf = 0.5 * erfc(-saved * kSqrt1_2), pdf = exp(-0.5 * saved * saved) * kInvSqrt2Pi;
      return dy * (pdf == 0.0 ? cdf : cdf + saved * pdf);
    }
    case Pointwise::gelu_tanh: {
      const double s = sigmoid_of(2.0 * kSqrt2OverPi * (saved + kGeluCubic * saved * saved * saved));
      const double spread = s * (1.0 - s), du = kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * saved * saved);
      return dy * (spread == 0.0 ? s : s + 2.0 * saved * spread * du);
    }
    case Pointwise::hard_sigmoid:
      if (saved != saved) return saved;
      return saved > -3.0 && saved < 3.0 ? dy / 6.0 : 0.0;
    case Pointwise::hard_swish:
      if (saved != saved) return saved;
      if (saved < -3.0) return 0.0;
      return saved <= 3.0 ? dy * (2.0 * saved + 3.0) / 6.0 : dy;
  }
  return dy;
}

template <class T>
__global__ void pointwise_forward_kernel(Pointwise op, double alpha, int64_t n, const T* x, T* y) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) y[i] = static_cast<T>(forward_value(op, x[i], alpha));
}

template <class T>
__global__ void pointwise_backward_kernel(Pointwise op, double alpha, int64_t n, const T* dy, const T* saved, T* dx) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) dx[i] = static_cast<T>(backward_value(op, dy[i], saved[i], alpha));
}

// Word `index` of the stream (ops/random_fill.h: word j is word j % 4 of block first_block + j / 4).
__device__ inline std::uint32_t philox_word(std::uint64_t seed, std::uint64_t first_block, std::uint64_t index) {
  const std::uint64_t counter = first_block + index / 4;
  std::uint32_t c[4][1] = {
      {static_cast<std::uint32_t>(counter)}, {static_cast<std::uint32_t>(counter >> 32)}, {0}, {0}};
  const philox::Key key = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  philox::philox4x32_10_lanes<1>(c, key);
  return c[index % 4][0];
}

// mask[k] ~ Bernoulli(keep) from word k, as fill_bernoulli: keep when word < keep * 2^32.
__global__ void bernoulli_kernel(int64_t n, std::uint64_t seed, std::uint64_t first_block, std::uint64_t threshold,
                                 std::uint8_t* mask) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) mask[i] = philox_word(seed, first_block, static_cast<std::uint64_t>(i)) < threshold;
}

// y[a, b, d] = mask[a, d] ? x * scale : 0 (in double, rounded once; a dropped NaN is 0).
template <class T>
__global__ void apply_mask_kernel(int64_t outer, int64_t middle, int64_t inner, const std::uint8_t* mask, double scale,
                                  const T* x, T* y) {
  CONVKIT_GRID_STRIDE_LOOP(i, outer * middle * inner) {
    const int64_t d = i % inner, a = i / inner / middle;
    y[i] = mask[a * inner + d] ? static_cast<T>(static_cast<double>(x[i]) * scale) : T(0);
  }
}

template <class T>
__global__ void axpy_kernel(int64_t n, T alpha, const T* x, T* y) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) y[i] = alpha == T(1) ? y[i] + x[i] : y[i] + alpha * x[i];
}

template <class T>
__global__ void sgd_kernel(int64_t n, T* p, const T* g, T* v, bool first_step, T lr, T momentum, T keep,
                           T weight_decay, bool decay, bool nesterov) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) {
    T d = g[i];
    if (decay) d = d + weight_decay * p[i];
    if (v) {
      const T velocity = first_step ? d : momentum * v[i] + keep * d;
      v[i] = velocity;
      d = nesterov ? d + momentum * velocity : velocity;
    }
    p[i] = p[i] - lr * d;
  }
}

}  // namespace

template <class T>
void pointwise_forward(Pointwise op, double alpha, int64_t n, const T* x, T* y) {
  if (n == 0) return;
  pointwise_forward_kernel<<<blocks_for(n), kThreads>>>(op, alpha, n, x, y);
  check_launch("pointwise_forward");
}

template <class T>
void pointwise_backward(Pointwise op, double alpha, int64_t n, const T* dy, const T* saved, T* dx) {
  if (n == 0) return;
  pointwise_backward_kernel<<<blocks_for(n), kThreads>>>(op, alpha, n, dy, saved, dx);
  check_launch("pointwise_backward");
}

template <class T>
void dropout_forward(int64_t outer, int64_t middle, int64_t inner, std::uint64_t seed, std::uint64_t first_block,
                     double rate, const T* x, T* y, std::uint8_t* mask) {
  const int64_t mask_size = outer * inner, total = outer * middle * inner;
  if (mask_size > 0) {
    // 64 bits, so that keep = 1 (threshold 2^32) keeps every word, as the CPU.
    const auto threshold = static_cast<std::uint64_t>((1.0 - rate) * 0x1p32);
    bernoulli_kernel<<<blocks_for(mask_size), kThreads>>>(mask_size, seed, first_block, threshold, mask);
    check_launch("dropout mask");
  }
  if (total == 0) return;
  apply_mask_kernel<<<blocks_for(total), kThreads>>>(outer, middle, inner, mask, 1.0 / (1.0 - rate), x, y);
  check_launch("dropout_forward");
}

template <class T>
void dropout_backward(int64_t outer, int64_t middle, int64_t inner, const std::uint8_t* mask, double rate,
                      const T* dy, T* dx) {
  const int64_t total = outer * middle * inner;
  if (total == 0) return;
  apply_mask_kernel<<<blocks_for(total), kThreads>>>(outer, middle, inner, mask, 1.0 / (1.0 - rate), dy, dx);
  check_launch("dropout_backward");
}

template <class T>
void axpy(int64_t n, double alpha, const T* x, T* y) {
  if (n == 0) return;
  axpy_kernel<<<blocks_for(n), kThreads>>>(n, static_cast<T>(alpha), x, y);
  check_launch("axpy");
}

template <class T>
void sgd_step(int64_t n, T* param, const T* grad, T* velocity, bool first_step, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreads>>>(n, param, grad, velocity, first_step, static_cast<T>(lr),
                                          static_cast<T>(momentum), static_cast<T>(1.0 - dampening),
                                          static_cast<T>(weight_decay), weight_decay != 0.0, nesterov);
  check_launch("sgd_step");
}

#define CONVKIT_INSTANTIATE_CUDA_ELEMENTWISE(T)                                                              \
  template void pointwise_forward<T>(Pointwise, double, int64_t, const T*, T*);                              \
  template void pointwise_backward<T>(Pointwise, double, int64_t, const T*, const T*, T*);                   \
  template void dropout_forward<T>(int64_t, int64_t, int64_t, std::uint64_t, std::uint64_t, double, const T*, \
                                   T*, std::uint8_t*);                                                       \
  template void dropout_backward<T>(int64_t, int64_t, int64_t, const std::uint8_t*, double, const T*, T*);   \
  template void axpy<T>(int64_t, double, const T*, T*);                                                     \
  template void sgd_step<T>(int64_t, T*, const T*, T*, bool, double, double, double, double, bool);
CONVKIT_INSTANTIATE_CUDA_ELEMENTWISE(float)
CONVKIT_INSTANTIATE_CUDA_ELEMENTWISE(double)
#undef CONVKIT_INSTANTIATE_CUDA_ELEMENTWISE

}  // namespace convkit::cuda
