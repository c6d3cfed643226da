// An owned, uninitialised device allocation of `count` values of T (RAII over cuda::allocate/release).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "core/cuda/runtime.h"

namespace convkit::cuda {

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::int64_t count)
      : data_(static_cast<T*>(allocate(checked_mul(count, static_cast<std::int64_t>(sizeof(T)), "device array")))) {}
  ~DeviceArray() { release(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return data_; }

 private:
  T* data_;
};

}  // namespace convkit::cuda
