#include "core/workspace.h"

#include <atomic>
#include <string>

namespace convkit {
namespace {

std::atomic<std::int64_t> limit_setting{kDefaultWorkspaceLimit};

}  // namespace

std::int64_t workspace_limit() { return limit_setting.load(std::memory_order_relaxed); }

void set_workspace_limit(std::int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("workspace limit must be >= 0 bytes, got " + std::to_string(bytes));
  limit_setting.store(bytes, std::memory_order_relaxed);
}

void require_workspace(std::int64_t bytes, const char* what) {
  const std::int64_t limit = workspace_limit();
  if (bytes > limit) {
    throw WorkspaceLimitError(std::string(what) + " needs " + std::to_string(bytes) +
                              " bytes of workspace, over the limit of " + std::to_string(limit) +
                              " bytes (convkit.set_workspace_limit)");
  }
}

}  // namespace convkit
