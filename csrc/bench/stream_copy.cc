#include "bench/stream_copy.h"

#include <cstddef>
#include <stdexcept>

#include "bench/timing.h"
#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "core/workspace.h"

namespace convkit::bench {

namespace {

// A plain loop (vectorised by the compiler), as STREAM's copy kernel: no memcpy, whose non-temporal
// stores for large sizes would make the roof depend on the C library.
void copy_share(const float* a, float* b, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) b[i] = a[i];
}

}  // namespace

std::vector<double> time_stream_copy(std::int64_t bytes, int threads, int repeats) {
  if (bytes < 1 || threads < 1 || repeats < 1) {
    throw std::invalid_argument("stream copy needs positive bytes, threads and repeats");
  }
  const std::int64_t count = ceil_div(bytes, static_cast<std::int64_t>(sizeof(float)));
  const WorkspaceCall call;  // both buffers count against the workspace limit together
  const std::int64_t buffer_bytes = checked_mul(count, static_cast<std::int64_t>(sizeof(float)), "stream copy");
  const WorkspaceCharge source_charge(buffer_bytes, "stream copy source"),
      destination_charge(buffer_bytes, "stream copy destination");
  AlignedBuffer source, destination;
  float* a = source.reserve_elements<float>(source_charge);
  float* b = destination.reserve_elements<float>(destination_charge);
  auto each_share = [&](auto&& body) {
    run_parallel(threads, [&](int tid, int team) {
      const std::int64_t begin = share_start(count, tid, team), end = share_start(count, tid + 1, team);
      body(begin, end - begin);
    });
  };
  each_share([&](std::int64_t begin, std::int64_t n) {
    for (std::int64_t i = begin; i < begin + n; ++i) a[i] = static_cast<float>(i % 1024), b[i] = 0.0f;
  });
  return time_calls(repeats, [&] {
    each_share([&](std::int64_t begin, std::int64_t n) { copy_share(a + begin, b + begin, n); });
  });
}

}  // namespace convkit::bench
