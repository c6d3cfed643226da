// GEMM on the GPU: cuBLAS, with convkit's epilogue (bias per column, ReLU / leaky ReLU) as a second pass.
//
// cuBLAS is column-major. A row-major (m x n) C is a column-major (n x m) C^T, and C^T = op(B)^T op(A)^T,
// so the row-major product is cuBLAS's with the operands swapped: gemm(opB, opA, n, m, k, B, A, C).
#include "core/cuda/check.cuh"
#include "ops/cuda/device_ops.h"
#include "ops/cuda/gemm_launch.cuh"

namespace convkit::cuda {
namespace {

template <class T>
__global__ void epilogue_kernel(int64_t rows, int64_t cols, T* c, const T* bias, Activation activation,
                                T negative_slope) {
  CONVKIT_GRID_STRIDE_LOOP(i, rows * cols) {
    const T v = bias ? c[i] + bias[i % cols] : c[i];
    c[i] = activate(v, activation, negative_slope);
  }
}

}  // namespace

template <class T>
void gemm_epilogue(int64_t rows, int64_t cols, T* c, const T* bias, Activation activation, T negative_slope) {
  if (bias == nullptr && activation == Activation::none) return;
  if (rows == 0 || cols == 0) return;
  epilogue_kernel<<<blocks_for(rows * cols), kThreads>>>(rows, cols, c, bias, activation, negative_slope);
  check_launch("gemm epilogue");
}

template <class T>
void gemm(const T* a, bool transpose_a, const T* b, bool transpose_b, T* c, int64_t m, int64_t n, int64_t k,
          T alpha, T beta, const T* bias, Activation activation, T negative_slope) {
  const int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
  strided_batched_gemm<T>({transpose_a, a, lda, 0}, {transpose_b, b, ldb, 0}, {c, n, 0}, m, n, k, 1, alpha, beta);
  gemm_epilogue(m, n, c, bias, activation, negative_slope);
}

#define CONVKIT_INSTANTIATE_CUDA_GEMM(T)                                                                     \
  template void gemm<T>(const T*, bool, const T*, bool, T*, int64_t, int64_t, int64_t, T, T, const T*,       \
                        Activation, T);                                                                      \
  template void gemm_epilogue<T>(int64_t, int64_t, T*, const T*, Activation, T);
CONVKIT_INSTANTIATE_CUDA_GEMM(float)
CONVKIT_INSTANTIATE_CUDA_GEMM(double)
#undef CONVKIT_INSTANTIATE_CUDA_GEMM

}  // namespace convkit::cuda
