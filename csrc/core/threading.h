// The thread count convkit's kernels use, and the one place that opens an OpenMP parallel region.
//
// The count is a process-wide setting (not OpenMP's per-thread ICV), so every Python thread that calls
// into convkit sees the same value. After fork() the child runs single-threaded until the user sets a
// count again: an OpenMP runtime's worker pool does not survive fork.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/workspace.h"

namespace convkit {

bool openmp_enabled();
int hardware_threads();
int num_threads();
void set_num_threads(int n);  // n >= 1; throws std::invalid_argument otherwise
// True in a child forked after the parent's thread pool started; num_threads() is then 1.
bool single_threaded_after_fork();
void note_thread_pool_started();

// Runs body(thread_index, team_size) on up to `threads` threads. With one thread it runs inline, without
// entering the OpenMP runtime at all. The body must split its work by the team size it is given, which
// can be smaller than asked for. An exception may not leave an OpenMP region (std::terminate), so the
// first one a thread throws is caught there and rethrown here once the whole team has finished. The
// team's threads charge their scratch to the caller's op call (core/workspace.h).
template <class Body>
void run_parallel(int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1) {
    note_thread_pool_started();
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
    WorkspaceLedger* const ledger = current_workspace_ledger();
#pragma omp parallel num_threads(threads)
    {
      const WorkspaceLedgerScope same_call(ledger);
      try {
        body(omp_get_thread_num(), omp_get_num_threads());
      } catch (...) {
        if (!failed.exchange(true)) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return;
  }
#endif
  body(0, 1);
}

// Share `member` of `total` items split into `team` contiguous shares that differ by at most one item:
// the share is [share_start(total, member, team), share_start(total, member + 1, team)).
inline std::int64_t share_start(std::int64_t total, int member, int team) {
  return total / team * member + std::min<std::int64_t>(member, total % team);
}

}  // namespace convkit
