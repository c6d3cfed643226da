// Softmax cross-entropy with integer labels on the GPU (ops/loss.h's formulas, no class weights or label
// smoothing): one thread per row, sums in double in class order, as the CPU.
#include <cmath>

#include "core/cuda/check.cuh"
#include "ops/cuda/device_ops.h"

namespace convkit::cuda {
namespace {

struct RowSoftmax {
  double max, log_sum;  // m and log s of ops/loss.h
};

template <class T>
__device__ RowSoftmax row_softmax(const T* z, int64_t classes) {
  double m = z[0];
  for (int64_t c = 1; c < classes; ++c) m = z[c] > m ? static_cast<double>(z[c]) : m;
  double s = 0.0;
  for (int64_t c = 0; c < classes; ++c) s += exp(z[c] - m);
  return {m, log(s)};
}

template <class T>
__global__ void rows_kernel(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                            int64_t ignore_index, double* row_losses, double* row_counts) {
  CONVKIT_GRID_STRIDE_LOOP(r, rows) {
    const int64_t label = labels[r];
    row_losses[r] = 0.0;
    if (label == ignore_index) {
      row_counts[r] = 0.0;
    } else if (label < 0 || label >= classes) {
      row_counts[r] = -1.0;
    } else {
      const T* z = logits + r * classes;
      const RowSoftmax soft = row_softmax(z, classes);
      row_losses[r] = soft.log_sum - (z[label] - soft.max);
      row_counts[r] = 1.0;
    }
  }
}

template <class T>
__global__ void grad_kernel(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                            int64_t ignore_index, double scale, T* dlogits) {
  CONVKIT_GRID_STRIDE_LOOP(r, rows) {
    const int64_t label = labels[r];
    const T* z = logits + r * classes;
    T* dz = dlogits + r * classes;
    if (label == ignore_index || label < 0 || label >= classes) {
      for (int64_t c = 0; c < classes; ++c) dz[c] = T(0);
      continue;
    }
    const RowSoftmax soft = row_softmax(z, classes);
    for (int64_t c = 0; c < classes; ++c) {
      const double p = exp(z[c] - soft.max - soft.log_sum);
      dz[c] = static_cast<T>((p - (c == label ? 1.0 : 0.0)) * scale);
    }
  }
}

}  // namespace

template <class T>
void softmax_cross_entropy_rows(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                                int64_t ignore_index, double* row_losses, double* row_counts) {
  if (rows == 0) return;
  rows_kernel<<<blocks_for(rows), kThreads>>>(rows, classes, logits, labels, ignore_index, row_losses, row_counts);
  check_launch("softmax_cross_entropy rows");
}

template <class T>
void softmax_cross_entropy_grad(int64_t rows, int64_t classes, const T* logits, const int64_t* labels,
                                int64_t ignore_index, double scale, T* dlogits) {
  if (rows == 0) return;
  grad_kernel<<<blocks_for(rows), kThreads>>>(rows, classes, logits, labels, ignore_index, scale, dlogits);
  check_launch("softmax_cross_entropy grad");
}

#define CONVKIT_INSTANTIATE_CUDA_LOSS(T)                                                                     \
  template void softmax_cross_entropy_rows<T>(int64_t, int64_t, const T*, const int64_t*, int64_t, double*,   \
                                              double*);                                                      \
  template void softmax_cross_entropy_grad<T>(int64_t, int64_t, const T*, const int64_t*, int64_t, double, T*);
CONVKIT_INSTANTIATE_CUDA_LOSS(float)
CONVKIT_INSTANTIATE_CUDA_LOSS(double)
#undef CONVKIT_INSTANTIATE_CUDA_LOSS

}  // namespace convkit::cuda
