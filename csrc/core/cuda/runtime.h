// The CUDA backend's device runtime, as plain C++ (no CUDA headers), so that the pybind11 bindings compile
// with the host compiler. Every call works on the current device (device 0 unless cudaSetDevice was
// called) and the legacy default stream, which orders all of convkit's work and synchronises with the
// blocking streams of other libraries. Errors throw std::runtime_error naming the call and CUDA's message.
#pragma once
#include <cstdint>
#include <string>

namespace convkit::cuda {

// Devices visible to this process: 0 when there is no GPU or no driver (never throws for those).
int device_count();
// "13.0" etc.: the CUDA runtime convkit was built against.
std::string runtime_version();
// The current device's name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
std::string device_description();

// Device memory, stream-ordered on the default stream from CUDA's memory pool (cudaMallocAsync, plain
// cudaMalloc where pools are unsupported): allocating and releasing neither synchronise nor return memory to
// the driver. bytes == 0 gives nullptr. release ignores errors (it is called from destructors).
void* allocate(std::int64_t bytes);
void release(void* pointer) noexcept;
void copy_to_device(void* device, const void* host, std::int64_t bytes);
void copy_to_host(void* host, const void* device, std::int64_t bytes);
void copy_on_device(void* destination, const void* source, std::int64_t bytes);
void fill_zero(void* device, std::int64_t bytes);
void synchronize();  // waits for the default stream

// TF32 tensor cores for float32 GEMMs (and so convolutions): off by default, as in PyTorch, because it
// rounds the operands to 10 mantissa bits.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace convkit::cuda
