// Wall-clock timing of a callable, outside Python: one warm-up call, then `repeats` timed calls.
#pragma once
#include <chrono>
#include <vector>

namespace convkit::bench {

template <class F>
std::vector<double> time_calls(int repeats, F&& call) {
  using clock = std::chrono::steady_clock;
  call();
  std::vector<double> seconds;
  seconds.reserve(repeats);
  for (int r = 0; r < repeats; ++r) {
    const auto start = clock::now();
    call();
    seconds.push_back(std::chrono::duration<double>(clock::now() - start).count());
  }
  return seconds;
}

}  // namespace convkit::bench
