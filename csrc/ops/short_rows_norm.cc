// Short-row normalization driver (layout and formulas in short_rows_norm.h).
//
// Threads take contiguous shares of rows (forward) or of blocks of rows (backward), and the kernel does a
// whole run of rows per call. Each row's statistics, y and dx depend on that row alone. dgamma and dbeta are
// sums over all rows: each block of rows_per_block(K) rows, a length fixed by the shape, sums its rows into
// its own slot, and the slots are added in block order afterwards, so every bit of every result is the same
// for any thread count.
#include "ops/short_rows_norm.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/checked_math.h"
#include "kernels/registry.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// A block of at least 16K values (64 KiB of float32 dy and x each) amortises its 2 K partial sums; with
// 16 rows or more per block those stay below a quarter of x's float32 size however long the rows are.
constexpr int64_t kValuesPerBlock = 16384;
constexpr int64_t kMinBlockRows = 16;

int64_t rows_per_block(int64_t values) { return std::max(kMinBlockRows, kValuesPerBlock / values); }

// `given`, or `values` copies of fill in storage when it is null: the kernels always take gamma and beta.
template <class T>
const T* given_or_filled(const T* given, int64_t values, T fill, std::vector<T>& storage) {
  if (given) return given;
  storage.assign(static_cast<std::size_t>(values), fill);
  return storage.data();
}

}  // namespace

void check_short_rows(int64_t rows, int64_t values) {
  if (rows < 0 || values < 1) {
    throw std::invalid_argument("short-row norm: bad shape (rows " + std::to_string(rows) + ", values " +
                                std::to_string(values) + ")");
  }
  checked_mul(rows, values, "short-row norm size");
}

template <class T>
void short_rows_norm_forward(int64_t rows, int64_t values, const T* x, double eps, const T* gamma, const T* beta,
                             T* y, double* mean, double* inv_std) {
  check_short_rows(rows, values);
  if (!(eps >= 0.0)) throw std::invalid_argument("short-row norm: eps must be >= 0, got " + std::to_string(eps));
  std::vector<T> ones, zeros;
  const T* g = given_or_filled(gamma, values, T(1), ones);
  const T* b = given_or_filled(beta, values, T(0), zeros);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  for_each_share(rows, values, [&](int64_t begin, int64_t end) {
    kernel.short_rows_forward(x + begin * values, end - begin, values, eps, g, b, y + begin * values, mean + begin,
                              inv_std + begin);
  });
}

template <class T>
void short_rows_norm_backward(int64_t rows, int64_t values, const T* dy, const T* x, const double* mean,
                              const double* inv_std, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  check_short_rows(rows, values);
  std::vector<T> ones;
  const T* g = given_or_filled(gamma, values, T(1), ones);
  const std::vector<double> gamma_wide(g, g + values);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  const int64_t block_rows = rows_per_block(values), blocks = ceil_div(rows, block_rows);
  // Each block's slot: its sums of dy, then of dy * xhat (K doubles each), zeroed here.
  std::vector<double> block_sums(static_cast<std::size_t>(checked_mul(blocks, 2 * values, "short-row norm sums")));
  for_each_share(blocks, block_rows * values, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t first = block * block_rows, count = std::min(rows - first, block_rows);
      const int64_t offset = first * values;
      double* sums = block_sums.data() + block * 2 * values;
      kernel.short_rows_backward(dy + offset, x + offset, count, values, mean + first, inv_std + first, g,
                                 gamma_wide.data(), dx + offset, sums, sums + values);
    }
  });
  std::vector<double> total(static_cast<std::size_t>(2 * values), 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    const double* sums = block_sums.data() + block * 2 * values;
    for (int64_t i = 0; i < 2 * values; ++i) total[i] += sums[i];
  }
  for (int64_t k = 0; k < values; ++k) {
    if (dbeta) dbeta[k] = static_cast<T>(total[k]);
    if (dgamma) dgamma[k] = static_cast<T>(total[values + k]);
  }
}

#define CONVKIT_INSTANTIATE_SHORT_ROWS_NORM(T)                                                                \
  template void short_rows_norm_forward<T>(int64_t, int64_t, const T*, double, const T*, const T*, T*, double*, \
                                           double*);                                                          \
  template void short_rows_norm_backward<T>(int64_t, int64_t, const T*, const T*, const double*, const double*, \
                                            const T*, T*, T*, T*);
CONVKIT_INSTANTIATE_SHORT_ROWS_NORM(float)
CONVKIT_INSTANTIATE_SHORT_ROWS_NORM(double)
#undef CONVKIT_INSTANTIATE_SHORT_ROWS_NORM

}  // namespace convkit
