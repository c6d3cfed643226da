#include "core/cuda/runtime.h"

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/cuda/check.cuh"

namespace convkit::cuda {
namespace {

std::atomic<bool> tf32_allowed{false};

// Whether the device has CUDA's stream-ordered allocator; if so, its pool keeps freed memory (release
// threshold: unlimited), so that the many short-lived tensors and scratch buffers of a training step cost
// neither a cudaMalloc nor the device-wide synchronisation of a cudaFree.
bool use_memory_pool() {
  static const bool supported = [] {
    int device = 0, flag = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    if (cudaDeviceGetAttribute(&flag, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess || flag == 0) {
      cudaGetLastError();
      return false;
    }
    cudaMemPool_t pool;
    check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
    std::uint64_t keep_everything = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_everything), "cudaMemPoolSetAttribute");
    return true;
  }();
  return supported;
}

void apply_math_mode(cublasHandle_t handle) {
  check(cublasSetMathMode(handle, tf32_allowed ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
        "cublasSetMathMode");
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: report none
    return 0;
  }
  return count;
}

std::string runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

std::string device_description() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

void* allocate(std::int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("allocate: negative size " + std::to_string(bytes));
  if (bytes == 0) return nullptr;
  void* pointer = nullptr;
  const auto size = static_cast<std::size_t>(bytes);
  // Stream-ordered on the default stream: the memory is ready for the work queued after this call.
  const cudaError_t status = use_memory_pool() ? cudaMallocAsync(&pointer, size, 0) : cudaMalloc(&pointer, size);
  check(status, ("allocating " + std::to_string(bytes) + " bytes of device memory").c_str());
  return pointer;
}

void release(void* pointer) noexcept {
  // Stream-ordered: the memory returns to the pool once the work queued before it is done, so a scratch
  // buffer may be released right after the kernels that use it were launched.
  if (pointer != nullptr) {
    if (use_memory_pool()) {
      cudaFreeAsync(pointer, 0);
    } else {
      cudaFree(pointer);
    }
  }
}

void copy_to_device(void* device, const void* host, std::int64_t bytes) {
  if (bytes > 0) {
    check(cudaMemcpy(device, host, static_cast<std::size_t>(bytes), cudaMemcpyHostToDevice), "copy to device");
  }
}

void copy_to_host(void* host, const void* device, std::int64_t bytes) {
  if (bytes > 0) {
    check(cudaMemcpy(host, device, static_cast<std::size_t>(bytes), cudaMemcpyDeviceToHost), "copy to host");
  }
}

void copy_on_device(void* destination, const void* source, std::int64_t bytes) {
  if (bytes > 0) {
    check(cudaMemcpyAsync(destination, source, static_cast<std::size_t>(bytes), cudaMemcpyDeviceToDevice, 0),
          "copy on device");
  }
}

void fill_zero(void* device, std::int64_t bytes) {
  if (bytes > 0) check(cudaMemsetAsync(device, 0, static_cast<std::size_t>(bytes), 0), "cudaMemsetAsync");
}

void synchronize() { check(cudaStreamSynchronize(0), "cudaStreamSynchronize"); }

cublasHandle_t cublas_handle() {
  // One handle for the process (the backend drives one device); created lazily so that importing
  // convkit._cuda on a machine without a GPU never touches the driver.
  static std::once_flag created;
  static cublasHandle_t handle = nullptr;
  std::call_once(created, [] {
    check(cublasCreate(&handle), "cublasCreate");
    check(cublasSetStream(handle, 0), "cublasSetStream");
  });
  apply_math_mode(handle);
  return handle;
}

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }

}  // namespace convkit::cuda
