// A STREAM-like copy (b[i] = a[i] over float arrays): the memory-bandwidth roof that the benchmarks of
// memory-bound ops (pooling, normalization) compare their bytes per second with.
#pragma once
#include <cstdint>
#include <vector>

namespace convkit::bench {

// Seconds of each of `repeats` timed copies (after one warm-up) of `bytes` bytes from one 64-byte aligned
// buffer to another, on `threads` threads, each thread copying one contiguous share. Each thread first
// touches its share of both buffers, so the pages sit near the thread that copies them. Counted as
// 2 * bytes moved (read a, write b; the write-allocate read of b is not counted, as in STREAM).
std::vector<double> time_stream_copy(std::int64_t bytes, int threads, int repeats);

}  // namespace convkit::bench
