// The machine's FP32 roof: 12 independent chains of 8-wide FMAs per thread (enough to cover the FMA
// latency on two pipes), no memory traffic.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/threading.h"

namespace convkit::bench {

namespace {
float fma_chains(std::int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  return _mm256_cvtss_f32(sum);  // a use of the result, so the loop is not optimised away
}
}  // namespace

double fma_peak_gflops(int threads) {
  // Many short trials (~4 ms each at 3 GHz) rather than a few long ones: on a shared machine a trial longer
  // than a scheduler time slice is always interrupted, so the best of long trials reads well under the peak
  // while the kernels it rates, timed in shorter calls, can run uninterrupted (and read over 100%).
  constexpr std::int64_t kIterations = 2'000'000;
  constexpr int kTrials = 30;
  double best = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    volatile float sink = 0;
    int team_size = 1;
    const auto start = std::chrono::steady_clock::now();
    run_parallel(threads, [&](int tid, int team) {
      const float r = fma_chains(kIterations);
      if (tid == 0) team_size = team, sink = r;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, team_size * double(kIterations) * 12 * 8 * 2 / seconds / 1e9);
  }
  return best;
}

}  // namespace convkit::bench
