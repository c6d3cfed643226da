// The cap on scratch memory one op call may hold at once (im2col tiles, packing panels, transposed copies,
// partial sums), summed over every thread working for the call; a process-wide setting.
//
// Each scratch allocation is covered by a WorkspaceCharge, alive as long as the memory is in use. The
// charges of one call add up in its WorkspaceLedger: an op entry point opens a WorkspaceCall, which makes a
// ledger current on the calling thread, and run_parallel (core/threading.h) makes it current on the team's
// threads too. Drivers size their tiles to fit what the call's other buffers leave; a charge that does not
// fit throws WorkspaceLimitError (MemoryError in Python) before anything is allocated.
#pragma once
#include <atomic>
#include <cstdint>
#include <stdexcept>

namespace convkit {

constexpr std::int64_t kDefaultWorkspaceLimit = std::int64_t{1} << 30;  // 1 GiB

std::int64_t workspace_limit();
void set_workspace_limit(std::int64_t bytes);  // bytes >= 0; throws std::invalid_argument otherwise

// Thrown where scratch would exceed the limit; the message states the bytes needed and the limit.
class WorkspaceLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of scratch one op call holds now, over all its threads.
class WorkspaceLedger {
 public:
  std::atomic<std::int64_t> held{0};
};

// The ledger current on this thread (nullptr outside any op call).
WorkspaceLedger* current_workspace_ledger() noexcept;

// Makes `ledger` current on this thread for the scope, then restores the previous one.
class WorkspaceLedgerScope {
 public:
  explicit WorkspaceLedgerScope(WorkspaceLedger* ledger) noexcept;
  ~WorkspaceLedgerScope();
  WorkspaceLedgerScope(const WorkspaceLedgerScope&) = delete;
  WorkspaceLedgerScope& operator=(const WorkspaceLedgerScope&) = delete;

 private:
  WorkspaceLedger* previous_;
};

// One op call: opens a ledger on this thread, or joins the one already open (an op calling another op,
// e.g. conv backward data running as a convolution, is one call).
class WorkspaceCall {
 public:
  WorkspaceCall() noexcept;
  WorkspaceCall(const WorkspaceCall&) = delete;
  WorkspaceCall& operator=(const WorkspaceCall&) = delete;

 private:
  WorkspaceLedger own_;
  WorkspaceLedgerScope scope_;
};

// `bytes` of scratch for `what`, counted against the current call's ledger while alive (alone when no
// call is open). Throws WorkspaceLimitError when the call's total would exceed the limit.
class WorkspaceCharge {
 public:
  WorkspaceCharge(std::int64_t bytes, const char* what);
  ~WorkspaceCharge();
  WorkspaceCharge(const WorkspaceCharge&) = delete;
  WorkspaceCharge& operator=(const WorkspaceCharge&) = delete;
  std::int64_t bytes() const noexcept { return bytes_; }

 private:
  WorkspaceLedger* ledger_;
  std::int64_t bytes_;
};

// Throws WorkspaceLimitError, stating `bytes` and what the call holds, unless `bytes` more fit in the
// current call now (a driver checks the least it can tile down to before it starts).
void require_workspace(std::int64_t bytes, const char* what);

// The bytes the current call may still charge (the whole limit outside a call); never negative.
std::int64_t workspace_available();

}  // namespace convkit
