// Splits a range of independent items into contiguous shares, one per thread, for the memory-bound
// elementwise and reduction drivers (normalization, LRN).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/checked_math.h"
#include "core/threading.h"

namespace convkit {

// Below about this many elements of work per thread, waking another thread costs more than it saves.
constexpr std::int64_t kMinElementsPerThread = 1 << 15;

// Runs share(begin, end) for contiguous shares [begin, end) of [0, items) on as many threads as the work
// (items * elements_per_item) warrants, at most num_threads(). Which thread runs an item never changes
// what is computed for it: callers keep their results independent of the thread count.
template <class Share>
void for_each_share(std::int64_t items, std::int64_t elements_per_item, Share&& share) {
  const std::int64_t work = std::max<std::int64_t>(1, items) * std::max<std::int64_t>(1, elements_per_item);
  const std::int64_t wanted = std::min<std::int64_t>(ceil_div(work, kMinElementsPerThread), items);
  const int threads = static_cast<int>(std::clamp<std::int64_t>(wanted, 1, num_threads()));
  run_parallel(threads, [&](int member, int team) {
    share(share_start(items, member, team), share_start(items, member + 1, team));
  });
}

}  // namespace convkit
