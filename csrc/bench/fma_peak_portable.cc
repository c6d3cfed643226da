// Non-x86 builds have no SIMD peak loop; the benchmarks then report GFLOP/s without a percentage.
#include "bench/fma_peak.h"

#if !CONVKIT_HAVE_AVX2
namespace convkit::bench {
double fma_peak_gflops(int) { return 0; }
}  // namespace convkit::bench
#endif
