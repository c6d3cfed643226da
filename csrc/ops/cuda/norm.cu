// Batch normalization on the GPU, x viewed as (rows, C): statistics per channel in double, two passes
// (the mean, then the mean squared deviation, as the CPU), through the deterministic column sums.
#include <cmath>

#include "core/cuda/check.cuh"
#include "ops/cuda/column_reduce.cuh"
#include "ops/cuda/device_ops.h"

namespace convkit::cuda {
namespace {

template <class T>
__global__ void apply_kernel(int64_t rows, int64_t channels, const T* x, const double* mean, const double* inv_std,
                             const T* gamma, const T* beta, T* y) {
  CONVKIT_GRID_STRIDE_LOOP(i, rows * channels) {
    const int64_t c = i % channels;
    const double scale = inv_std[c] * (gamma ? static_cast<double>(gamma[c]) : 1.0);
    y[i] = static_cast<T>((x[i] - mean[c]) * scale + (beta ? static_cast<double>(beta[c]) : 0.0));
  }
}

// dx = gamma * inv_std * (dy - [batch] (sum dy + x_hat * sum dy x_hat) / rows), sums per channel.
template <class T>
__global__ void backward_kernel(int64_t rows, int64_t channels, const T* dy, const T* x, const double* mean,
                                const double* inv_std, const T* gamma, const double* sums, bool batch_statistics,
                                T* dx) {
  CONVKIT_GRID_STRIDE_LOOP(i, rows * channels) {
    const int64_t c = i % channels;
    const double scale = inv_std[c] * (gamma ? static_cast<double>(gamma[c]) : 1.0);
    double g = dy[i];
    if (batch_statistics) {
      const double x_hat = (x[i] - mean[c]) * inv_std[c];
      g -= (sums[c] + x_hat * sums[channels + c]) / static_cast<double>(rows);
    }
    dx[i] = static_cast<T>(g * scale);
  }
}

template <class T>
__global__ void running_update_kernel(int64_t channels, double momentum, double factor, const double* batch,
                                      T* running) {
  CONVKIT_GRID_STRIDE_LOOP(c, channels) {
    running[c] = static_cast<T>((1.0 - momentum) * running[c] + momentum * factor * batch[c]);
  }
}

template <class T>
__global__ void fixed_statistics_kernel(int64_t channels, const T* running_mean, const T* running_var, double eps,
                                        double* mean, double* inv_std) {
  CONVKIT_GRID_STRIDE_LOOP(c, channels) {
    mean[c] = running_mean[c];
    inv_std[c] = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
  }
}

template <class T>
__global__ void store_kernel(int64_t n, const double* from, T* to) {
  CONVKIT_GRID_STRIDE_LOOP(i, n) to[i] = static_cast<T>(from[i]);
}

}  // namespace

template <class T>
void batch_norm_statistics(int64_t rows, int64_t channels, const T* x, double eps, double* mean, double* var,
                           double* inv_std) {
  const double count = static_cast<double>(rows);
  column_sums(rows, channels, [=] __device__(int64_t r, int64_t c) -> double { return x[r * channels + c]; },
              [=] __device__(int64_t c, double sum) { mean[c] = sum / count; });
  column_sums(
      rows, channels,
      [=] __device__(int64_t r, int64_t c) -> double {
        const double d = x[r * channels + c] - mean[c];
        return d * d;
      },
      [=] __device__(int64_t c, double sum) {
        var[c] = sum / count;
        inv_std[c] = 1.0 / sqrt(var[c] + eps);
      });
}

template <class T>
void batch_norm_apply(int64_t rows, int64_t channels, const T* x, const double* mean, const double* inv_std,
                      const T* gamma, const T* beta, T* y) {
  if (rows * channels == 0) return;
  apply_kernel<<<blocks_for(rows * channels), kThreads>>>(rows, channels, x, mean, inv_std, gamma, beta, y);
  check_launch("batch_norm_apply");
}

template <class T>
void batch_norm_fixed_statistics(int64_t channels, const T* running_mean, const T* running_var, double eps,
                                 double* mean, double* inv_std) {
  if (channels == 0) return;
  fixed_statistics_kernel<<<blocks_for(channels), kThreads>>>(channels, running_mean, running_var, eps, mean,
                                                                inv_std);
  check_launch("batch_norm_fixed_statistics");
}

template <class T>
void batch_norm_running_update(int64_t channels, double momentum, double factor, const double* batch, T* running) {
  if (channels == 0) return;
  running_update_kernel<<<blocks_for(channels), kThreads>>>(channels, momentum, factor, batch, running);
  check_launch("batch_norm_running_update");
}

template <class T>
void batch_norm_backward(int64_t rows, int64_t channels, const T* dy, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, bool batch_statistics, T* dx, T* dgamma, T* dbeta) {
  // sums[c] = sum dy (dbeta), sums[C + c] = sum dy * x_hat (dgamma).
  DeviceArray<double> sums(2 * channels);
  double* s = sums.get();
  column_sums(rows, channels, [=] __device__(int64_t r, int64_t c) -> double { return dy[r * channels + c]; },
              [=] __device__(int64_t c, double sum) { s[c] = sum; });
  column_sums(
      rows, channels,
      [=] __device__(int64_t r, int64_t c) -> double {
        return static_cast<double>(dy[r * channels + c]) * ((x[r * channels + c] - mean[c]) * inv_std[c]);
      },
      [=] __device__(int64_t c, double sum) { s[channels + c] = sum; });
  if (rows * channels > 0) {
    backward_kernel<<<blocks_for(rows * channels), kThreads>>>(rows, channels, dy, x, mean, inv_std, gamma, s,
                                                              batch_statistics, dx);
    check_launch("batch_norm_backward");
  }
  if (dbeta) store_kernel<<<blocks_for(channels), kThreads>>>(channels, s, dbeta);
  if (dgamma) store_kernel<<<blocks_for(channels), kThreads>>>(channels, s + channels, dgamma);
  check_launch("batch_norm_backward store");
}

#define CONVKIT_INSTANTIATE_CUDA_NORM(T)                                                                     \
  template void batch_norm_statistics<T>(int64_t, int64_t, const T*, double, double*, double*, double*);     \
  template void batch_norm_apply<T>(int64_t, int64_t, const T*, const double*, const double*, const T*,      \
                                    const T*, T*);                                                           \
  template void batch_norm_running_update<T>(int64_t, double, double, const double*, T*);                   \
  template void batch_norm_fixed_statistics<T>(int64_t, const T*, const T*, double, double*, double*);      \
  template void batch_norm_backward<T>(int64_t, int64_t, const T*, const T*, const double*, const double*,   \
                                       const T*, bool, T*, T*, T*);
CONVKIT_INSTANTIATE_CUDA_NORM(float)
CONVKIT_INSTANTIATE_CUDA_NORM(double)
#undef CONVKIT_INSTANTIATE_CUDA_NORM

}  // namespace convkit::cuda
