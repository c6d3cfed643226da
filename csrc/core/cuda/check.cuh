// Helpers shared by the backend's .cu files: error checks that throw (host code only: nothing throws in
// a kernel), the cuBLAS handle, and launch shapes.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace convkit::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // reset the (non-sticky) error state, so that the next call starts clean
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
  }
}

inline void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusString(status));
  }
}

// After a kernel launch: a bad configuration shows here, a fault at the next synchronising call.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// The current device's cuBLAS handle, created on first use, on the default stream, with the TF32 setting.
cublasHandle_t cublas_handle();

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (enough to fill the GPU; the loop covers the rest).
inline unsigned blocks_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// for (i = first; i < n; i += stride) over the whole grid, in 64-bit indices.
#define CONVKIT_GRID_STRIDE_LOOP(i, n)                                                                  \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);    \
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

}  // namespace convkit::cuda
