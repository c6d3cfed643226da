// The CUDA backend's ops: the CPU ops' contracts (csrc/ops/*.h) on device pointers. Every pointer is device
// memory, C-contiguous in the CPU op's layout; the bindings have checked shapes and sizes. Calls are
// asynchronous on the default stream and throw std::runtime_error for a CUDA or cuBLAS failure.
//
// Numerics: GEMMs and convolutions go through cuBLAS (float32 in TF32 only when set_allow_tf32(true));
// reductions (bias gradients, batch-norm statistics, losses) accumulate in double, in a fixed order, so
// they are deterministic. Pooling backward with overlapping windows adds with atomics (order may vary).
#pragma once
#include <array>
#include <cstdint>

#include "core/activation.h"
#include "ops/activation.h"

namespace convkit::cuda {

using std::int64_t;

// ---- GEMM (gemm.cu): c (m x n) = act(alpha * op(a) @ op(b) + beta * c + bias), all row-major.
// a is (m, k), or (k, m) when transpose_a; b is (k, n), or (n, k) when transpose_b.
template <class T>
void gemm(const T* a, bool transpose_a, const T* b, bool transpose_b, T* c, int64_t m, int64_t n, int64_t k,
          T alpha, T beta, const T* bias, Activation activation, T negative_slope);

// ---- Convolution (conv.cu), as the CPU core sees it: 3 spatial axes (D, H, W), leading ones of size 1.
//   x (N, in, C_in), w (kernel, C_in / groups, C_out), y (N, out, C_out); zero padding.
struct ConvGeometry {
  int64_t batch, in_channels, out_channels, groups;
  std::array<int64_t, 3> in, out, kernel, stride, dilation, pad_before;
};

template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                  T negative_slope);
template <class T>
void conv_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx);
// dw and db (db may be null) are overwritten.
template <class T>
void conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db);
// db[c] = the sum of dy's column c, dy viewed as (rows, channels): the bias gradient alone.
template <class T>
void bias_gradient(int64_t rows, int64_t channels, const T* dy, T* db);

// ---- Pooling (pool.cu) over per-axis window tables, as ops/pool.h: for axis a, output o reads input
// begin[o], begin[o] + step[a], ... < end[o]. `windows` is device memory holding, axis after axis,
// out[a] begins, then out[a] ends, then out[a] padded counts (int64).
struct PoolGeometry {
  int64_t batch, channels;
  std::array<int64_t, 3> in, out, step;
  const int64_t* windows;
};

template <class T>
void max_pool_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices);
template <class T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx);
template <class T>
void avg_pool_forward(const PoolGeometry& g, const T* x, T* y, bool count_include_pad);
template <class T>
void avg_pool_backward(const PoolGeometry& g, const T* dy, T* dx, bool count_include_pad);

// ---- Batch normalization (norm.cu): x viewed as (rows, C), statistics per channel in double.
// batch_norm_statistics: mean, biased var and inv_std = 1 / sqrt(var + eps) of each column.
template <class T>
void batch_norm_statistics(int64_t rows, int64_t channels, const T* x, double eps, double* mean, double* var,
                           double* inv_std);
// y = (x - mean) * inv_std * gamma + beta (gamma, beta may be null: 1 and 0).
template <class T>
void batch_norm_apply(int64_t rows, int64_t channels, const T* x, const double* mean, const double* inv_std,
                      const T* gamma, const T* beta, T* y);
// The statistics of inference from running ones: mean = running_mean, inv_std = 1 / sqrt(running_var + eps).
template <class T>
void batch_norm_fixed_statistics(int64_t channels, const T* running_mean, const T* running_var, double eps,
                                 double* mean, double* inv_std);
// running = (1 - momentum) * running + momentum * factor * batch, per channel (PyTorch's running statistics;
// factor n / (n - 1) turns the biased batch variance into the unbiased one).
template <class T>
void batch_norm_running_update(int64_t channels, double momentum, double factor, const double* batch, T* running);
// dx, dgamma, dbeta (the last two may be null) overwritten; batch_statistics as ops/norm.h.
template <class T>
void batch_norm_backward(int64_t rows, int64_t channels, const T* dy, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, bool batch_statistics, T* dx, T* dgamma, T* dbeta);

// ---- Pointwise activations (activation.cu): ops/activation.h's table, formulas and `saved` argument
// (the forward's output y or input x, per op), in double rounded once to T.
template <class T>
void pointwise_forward(Pointwise op, double alpha, int64_t n, const T* x, T* y);
template <class T>
void pointwise_backward(Pointwise op, double alpha, int64_t n, const T* dy, const T* saved, T* dx);

// ---- Dropout (activation.cu), ops/dropout.h's layout (outer, middle, inner) and Philox stream, so that
// the mask equals the CPU's bit for bit.
template <class T>
void dropout_forward(int64_t outer, int64_t middle, int64_t inner, std::uint64_t seed, std::uint64_t first_block,
                     double rate, const T* x, T* y, std::uint8_t* mask);
template <class T>
void dropout_backward(int64_t outer, int64_t middle, int64_t inner, const std::uint8_t* mask, double rate,
                      const T* dy, T* dx);

// ---- y += alpha * x, elementwise (activation.cu): Tensor addition, residual branches, gradient sums.
template <class T>
void axpy(int64_t n, double alpha, const T* x, T* y);

// ---- SGD with momentum (activation.cu), one tensor, ops/optim.h's formulas. velocity null: momentum 0.
template <class T>
void sgd_step(int64_t n, T* param, const T* grad, T* velocity, bool first_step, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov);

// ---- Softmax cross-entropy with integer labels (loss.cu), ops/loss.h's formulas without class weights or
// label smoothing. Two passes, because a mean's scale needs the count of rows not ignored:
//   rows pass: row_losses[r] = the row's loss (0 if ignored); row_counts[r] = 1, 0 if ignored, -1 if the
//              label is out of range (the caller sums both in a fixed order and reports bad labels);
//   grad pass: dlogits = (softmax - onehot) * scale, 0 on ignored rows.
template <class T>
void softmax_cross_entropy_rows(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                                int64_t ignore_index, double* row_losses, double* row_counts);
template <class T>
void softmax_cross_entropy_grad(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                                int64_t ignore_index, double scale, T* dlogits);

}  // namespace convkit::cuda
