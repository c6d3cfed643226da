// A grow-only, 64-byte aligned scratch buffer (packing panels, column tiles). Owning, move-only.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/checked_math.h"
#include "core/workspace.h"

namespace convkit {

class AlignedBuffer {
 public:
  // Returns at least `bytes` of 64-byte aligned memory; the contents are unspecified. Throws
  // WorkspaceLimitError when `bytes` exceed the workspace limit (even if the buffer is already that big, so
  // that a lowered limit is honoured), std::bad_alloc when the memory cannot be had. Earlier pointers are
  // invalidated on growth. `what` names the buffer in the error.
  void* reserve(std::int64_t bytes, const char* what = "scratch buffer") {
    require_workspace(bytes, what);
    if (bytes > capacity_) {
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
  T* reserve_elements(std::int64_t count, const char* what = "scratch buffer") {
    return static_cast<T*>(reserve(checked_mul(count, static_cast<std::int64_t>(sizeof(T)), what), what));
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> data_;
  std::int64_t capacity_ = 0;
};

}  // namespace convkit
