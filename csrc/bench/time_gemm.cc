#include "bench/time_gemm.h"

#include <random>

#include "bench/timing.h"
#include "core/checked_math.h"
#include "ops/gemm.h"

namespace convkit::bench {

template <class T>
std::vector<double> time_gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool transpose_a, bool transpose_b,
                              int repeats) {
  std::vector<T> a(checked_mul(m, k, "a")), b(checked_mul(k, n, "b")), c(checked_mul(m, n, "c"));
  std::mt19937 rng(42);
  std::uniform_real_distribution<T> uniform(-1, 1);
  for (T& v : a) v = uniform(rng);
  for (T& v : b) v = uniform(rng);
  MatrixRef<const T> av{a.data(), m, k, k, 1}, bv{b.data(), k, n, n, 1};
  if (transpose_a) av = MatrixRef<const T>{a.data(), k, m, m, 1}.transposed();
  if (transpose_b) bv = MatrixRef<const T>{b.data(), n, k, k, 1}.transposed();
  MatrixRef<T> cv{c.data(), m, n, n, 1};
  return time_calls(repeats, [&] { gemm<T>(av, bv, cv, T(1), T(0)); });
}

template std::vector<double> time_gemm<float>(std::int64_t, std::int64_t, std::int64_t, bool, bool, int);
template std::vector<double> time_gemm<double>(std::int64_t, std::int64_t, std::int64_t, bool, bool, int);

}  // namespace convkit::bench
