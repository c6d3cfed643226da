#include "core/workspace.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace convkit {
namespace {

std::atomic<std::int64_t> limit_setting{kDefaultWorkspaceLimit};
thread_local WorkspaceLedger* current_ledger = nullptr;

}  // namespace

std::int64_t workspace_limit() { return limit_setting.load(std::memory_order_relaxed); }

void set_workspace_limit(std::int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("workspace limit must be >= 0 bytes, got " + std::to_string(bytes));
  limit_setting.store(bytes, std::memory_order_relaxed);
}

WorkspaceLedger* current_workspace_ledger() noexcept { return current_ledger; }

WorkspaceLedgerScope::WorkspaceLedgerScope(WorkspaceLedger* ledger) noexcept : previous_(current_ledger) {
  current_ledger = ledger;
}

WorkspaceLedgerScope::~WorkspaceLedgerScope() { current_ledger = previous_; }

WorkspaceCall::WorkspaceCall() noexcept : scope_(current_ledger ? current_ledger : &own_) {}

WorkspaceCharge::WorkspaceCharge(std::int64_t bytes, const char* what) : ledger_(current_ledger), bytes_(bytes) {
  const std::int64_t limit = workspace_limit();
  // Take the bytes only if they fit (a compare-exchange loop: the team's threads charge one ledger). Held
  // never exceeds the limit, so limit - held cannot overflow.
  std::int64_t held = ledger_ ? ledger_->held.load() : 0;
  while (bytes_ <= limit - held) {
    if (!ledger_ || ledger_->held.compare_exchange_weak(held, held + bytes_)) return;
  }
  std::string message = std::string(what) + " needs " + std::to_string(bytes_) + " bytes of workspace";
  if (held > 0) {
    message += " on top of the " + std::to_string(held) + " bytes this call already holds";
    if (bytes_ <= INT64_MAX - held) message += " (" + std::to_string(held + bytes_) + " in all)";
  }
  throw WorkspaceLimitError(message + ", over the limit of " + std::to_string(limit) +
                            " bytes (convkit.set_workspace_limit)");
}

WorkspaceCharge::~WorkspaceCharge() {
  if (ledger_) ledger_->held.fetch_sub(bytes_);
}

void require_workspace(std::int64_t bytes, const char* what) { const WorkspaceCharge probe(bytes, what); }

std::int64_t workspace_available() {
  const std::int64_t held = current_ledger ? current_ledger->held.load() : 0;
  return std::max<std::int64_t>(0, workspace_limit() - held);
}

}  // namespace convkit
