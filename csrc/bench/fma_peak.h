#pragma once

namespace convkit::bench {
// Measured FP32 FMA throughput (GFLOP/s) of `threads` threads running independent FMA chains; 0 when no
// SIMD FMA kernel is built for this CPU.
double fma_peak_gflops(int threads);
}  // namespace convkit::bench
