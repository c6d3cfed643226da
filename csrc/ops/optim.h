// Fused optimizer updates: one call updates every tensor of a parameter group, elementwise, in place.
//
// Formulas (PyTorch's, element by element; g is the gradient, p the parameter, all arithmetic in T with the
// hyperparameters rounded to T first, as PyTorch does for a float32 tensor):
//
//   SGD     g' = g + weight_decay * p
//           v  = g'                                  on a tensor's first step (no dampening, as PyTorch)
//           v  = momentum * v + (1 - dampening) * g' afterwards
//           p -= lr * (g' + momentum * v)            nesterov
//           p -= lr * v                              otherwise (momentum == 0: p -= lr * g', no v kept)
//
//   Adam    g' = g + weight_decay * p                (AdamW instead: p *= 1 - lr * weight_decay, g' = g)
//           m  = lerp(m, g', 1 - beta1)              (PyTorch's lerp, see optim.cc)
//           s  = beta2 * s + (1 - beta2) * g' * g'
//           p -= lr / (1 - beta1^t) * m / (sqrt(s) / sqrt(1 - beta2^t) + eps)       t: the tensor's step, >= 1
//
// Elements are independent: the tensors' elements are split into contiguous shares over the threads, and
// any thread count gives the same bits.
#pragma once
#include <cstdint>
#include <vector>

namespace convkit {

struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

// One tensor of an SGD group. velocity is null when momentum == 0; first_step: velocity holds nothing yet.
template <class T>
struct SgdTensor {
  T* param;
  const T* grad;
  T* velocity;
  std::int64_t size;
  bool first_step;
};

struct AdamOptions {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled_weight_decay;  // AdamW
};

// One tensor of an Adam group; step is this tensor's step count including the current one (>= 1).
template <class T>
struct AdamTensor {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  std::int64_t size, step;
};

template <class T>
void sgd_step(const std::vector<SgdTensor<T>>& tensors, const SgdOptions& options);

template <class T>
void adam_step(const std::vector<AdamTensor<T>>& tensors, const AdamOptions& options);

}  // namespace convkit
