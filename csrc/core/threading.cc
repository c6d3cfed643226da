#include "core/threading.h"

#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

namespace convkit {
namespace {

int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();  // honours OMP_NUM_THREADS
#else
  return 1;
#endif
}

std::atomic<int>& thread_setting() {
  static std::atomic<int> setting{initial_threads()};
  return setting;
}

std::atomic<bool> pool_started{false};
std::atomic<bool> forked_after_pool{false};

void after_fork_in_child() {
  if (pool_started.load()) forked_after_pool.store(true);
}

[[maybe_unused]] const bool fork_handler_installed = [] {
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  return true;
}();

}  // namespace

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void note_thread_pool_started() { pool_started.store(true, std::memory_order_relaxed); }

bool single_threaded_after_fork() { return forked_after_pool.load(std::memory_order_relaxed); }

int num_threads() {
  if (!openmp_enabled() || single_threaded_after_fork()) return 1;
  return thread_setting().load(std::memory_order_relaxed);
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(n));
  thread_setting().store(n);
}

}  // namespace convkit
