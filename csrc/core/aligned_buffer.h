// A grow-only, 64-byte aligned scratch buffer (packing panels, column tiles). Owning, move-only.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/workspace.h"

namespace convkit {

class AlignedBuffer {
 public:
  // Returns 64-byte aligned memory for the bytes `charge` covers; the contents are unspecified. Taking
  // the charge makes every scratch allocation count against the workspace limit (core/workspace.h). A
  // cached allocation over the limit (kept from a call before the limit was lowered) is given back first.
  // Throws std::bad_alloc when the memory cannot be had. Earlier pointers are invalidated on growth.
  void* reserve(const WorkspaceCharge& charge) {
    const std::int64_t bytes = charge.bytes();
    if (bytes > capacity_ || capacity_ > workspace_limit()) {
      data_.reset();
      capacity_ = 0;
      void* p = nullptr;
      std::size_t rounded = (static_cast<std::size_t>(bytes) + 63) / 64 * 64;
      if (posix_memalign(&p, 64, rounded) != 0) throw std::bad_alloc();
      data_.reset(p);
      capacity_ = static_cast<std::int64_t>(rounded);
    }
    return data_.get();
  }

  template <class T>
  T* reserve_elements(const WorkspaceCharge& charge) {
    return static_cast<T*>(reserve(charge));
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data_;
  std::int64_t capacity_ = 0;
};

}  // namespace convkit
