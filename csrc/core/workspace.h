// The cap on scratch memory the core may allocate for one call (im2col tiles, packing panels, partial sums),
// a process-wide setting shared by every thread. Drivers size their tiles to fit it; a problem that cannot
// fit even its smallest tile fails with WorkspaceLimitError (MemoryError in Python) before allocating.
#pragma once
#include <cstdint>
#include <stdexcept>

namespace convkit {

constexpr std::int64_t kDefaultWorkspaceLimit = std::int64_t{1} << 30;  // 1 GiB

std::int64_t workspace_limit();
void set_workspace_limit(std::int64_t bytes);  // bytes >= 0; throws std::invalid_argument otherwise

// Thrown where a scratch buffer would exceed the limit; the message states the bytes needed and the limit.
class WorkspaceLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws WorkspaceLimitError when `bytes` of scratch for `what` exceed the limit.
void require_workspace(std::int64_t bytes, const char* what);

}  // namespace convkit
