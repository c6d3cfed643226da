// A GEMM timed in C++ on random operands: shared by convkit._C.bench_gemm and the convkit-bench executable.
#pragma once
#include <cstdint>
#include <vector>

namespace convkit::bench {

// Seconds of each of `repeats` calls (after one warm-up) of C = op(A) @ op(B), op(A) m x k and op(B) k x n,
// float or double, with the selected kernel and thread count. A transposed operand is stored as its
// transpose and passed as a transposed view, as a caller that transposes would. Sizes must be positive.
template <class T>
std::vector<double> time_gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                              int repeats);

}  // namespace convkit::bench
