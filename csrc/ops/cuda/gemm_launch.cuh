// Row-major strided-batched GEMM on cuBLAS, shared by gemm.cu and conv.cu (a grouped convolution is one
// batched GEMM over its groups). Operand views: row-major matrices with a leading dimension (elements
// between rows) and a stride between batch entries.
#pragma once
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/activation.h"
#include "core/cuda/check.cuh"

namespace convkit::cuda {

template <class T>
struct GemmOperand {
  bool transposed;  // the stored matrix is op(X)^T
  const T* data;
  std::int64_t ld, batch_stride;
};

template <class T>
struct GemmResult {
  T* data;
  std::int64_t ld, batch_stride;
};

inline int as_blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument(std::string("cuBLAS GEMM: ") + what + " = " + std::to_string(v) +
                                " exceeds cuBLAS's 32-bit sizes");
  }
  return static_cast<int>(v);
}

// C_i (m x n) = alpha * op(A_i) (m x k) @ op(B_i) (k x n) + beta * C_i for i < batch, all row-major.
template <class T>
void strided_batched_gemm(GemmOperand<T> a, GemmOperand<T> b, GemmResult<T> c, std::int64_t m, std::int64_t n,
                          std::int64_t k, std::int64_t batch, T alpha, T beta) {
  if (m == 0 || n == 0 || batch == 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands (see gemm.cu).
  const cublasOperation_t op_b = b.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int mi = as_blas_int(m, "m"), ni = as_blas_int(n, "n"), ki = as_blas_int(k, "k");
  const int lda = as_blas_int(a.ld < 1 ? 1 : a.ld, "lda"), ldb = as_blas_int(b.ld < 1 ? 1 : b.ld, "ldb");
  const int ldc = as_blas_int(c.ld < 1 ? 1 : c.ld, "ldc"), count = as_blas_int(batch, "batch");
  cublasHandle_t handle = cublas_handle();
  if constexpr (sizeof(T) == 4) {
    check(cublasSgemmStridedBatched(handle, op_b, op_a, ni, mi, ki, &alpha, b.data, ldb, b.batch_stride, a.data,
                                    lda, a.batch_stride, &beta, c.data, ldc, c.batch_stride, count),
          "cublasSgemmStridedBatched");
  } else {
    check(cublasDgemmStridedBatched(handle, op_b, op_a, ni, mi, ki, &alpha, b.data, ldb, b.batch_stride, a.data,
                                    lda, a.batch_stride, &beta, c.data, ldc, c.batch_stride, count),
          "cublasDgemmStridedBatched");
  }
}

// The epilogue pass of gemm.cu: c (rows x cols, contiguous) = act(c + bias).
template <class T>
void gemm_epilogue(std::int64_t rows, std::int64_t cols, T* c, const T* bias, Activation activation,
                   T negative_slope);

}  // namespace convkit::cuda
