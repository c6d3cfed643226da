// Softmax drivers (formulas in softmax.h). A task is one outer index and a block of up to kBlockColumns
// adjacent inner columns; every pass loops over the axis outside and the block's columns inside, so the
// inner loop runs over contiguous memory whatever the axis (for the last axis, inner = 1 and a block is a
// single row). Tasks are split over the threads in contiguous shares; a column is always computed by one
// thread in axis order, so results do not depend on the thread count. Sums are in double for float32 too.
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kBlockColumns = 64;
constexpr int kExpCost = 20;  // an exp costs about as much as 20 cheap operations (thread-count heuristic)

// The column block of a task: `width` columns starting at `first`; value (j, i) at first + j * inner + i.
struct ColumnBlock {
  int64_t first, width;
};

template <class Block>
void for_each_block(const SoftmaxLayout& l, int cost_per_value, Block&& block) {
  check_softmax_layout(l);
  const int64_t blocks_per_outer = ceil_div(l.inner, kBlockColumns);
  const int64_t tasks = l.outer * blocks_per_outer;
  for_each_share(tasks, std::min(l.inner, kBlockColumns) * l.length * cost_per_value, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o = t / blocks_per_outer, i0 = t % blocks_per_outer * kBlockColumns;
      block(ColumnBlock{o * l.length * l.inner + i0, std::min(kBlockColumns, l.inner - i0)});
    }
  });
}

// x - m, except that when m = +inf, the +inf entries give 0 and the others -inf (the limit of the column).
double shifted(double x, double m) {
  if (m == std::numeric_limits<double>::infinity()) return x == m ? 0.0 : -m;
  return x - m;
}

}  // namespace

void check_softmax_layout(const SoftmaxLayout& l) {
  if (l.outer < 0 || l.length < 0 || l.inner < 0) {
    throw std::invalid_argument("softmax: bad layout (outer " + std::to_string(l.outer) + ", length " +
                                std::to_string(l.length) + ", inner " + std::to_string(l.inner) + ")");
  }
  checked_mul(checked_mul(l.outer, l.length, "softmax size"), l.inner, "softmax size");
}

template <class T>
void softmax_forward(const SoftmaxLayout& l, bool log, const T* x, T* y) {
  const int64_t inner = l.inner;
  for_each_block(l, kExpCost, [&](ColumnBlock b) {
    double max[kBlockColumns], sum[kBlockColumns];
    std::fill(max, max + b.width, -std::numeric_limits<double>::infinity());
    std::fill(sum, sum + b.width, 0.0);
    for (int64_t j = 0; j < l.length; ++j) {
      const T* xj = x + b.first + j * inner;
      for (int64_t i = 0; i < b.width; ++i) {
        const double v = static_cast<double>(xj[i]);
        if (v > max[i] || v != v) max[i] = v;  // a NaN stays: nothing compares greater than it
      }
    }
    // softmax stores exp(x - m) in y and scales it afterwards; log_softmax only sums here, and writes y
    // from x in its last pass (x is still intact then, even in place).
    for (int64_t j = 0; j < l.length; ++j) {
      const T* xj = x + b.first + j * inner;
      T* yj = y + b.first + j * inner;
      for (int64_t i = 0; i < b.width; ++i) {
        const double e = std::exp(shifted(static_cast<double>(xj[i]), max[i]));
        sum[i] += e;
        if (!log) yj[i] = static_cast<T>(e);
      }
    }
    for (int64_t i = 0; i < b.width; ++i) sum[i] = log ? std::log(sum[i]) : 1.0 / sum[i];
    for (int64_t j = 0; j < l.length; ++j) {
      const T* xj = x + b.first + j * inner;
      T* yj = y + b.first + j * inner;
      for (int64_t i = 0; i < b.width; ++i) {
        yj[i] = static_cast<T>(log ? shifted(static_cast<double>(xj[i]), max[i]) - sum[i]
                                   : static_cast<double>(yj[i]) * sum[i]);
      }
    }
  });
}

template <class T>
void softmax_backward(const SoftmaxLayout& l, bool log, const T* dy, const T* y, T* dx) {
  const int64_t inner = l.inner;
  for_each_block(l, log ? kExpCost : 1, [&](ColumnBlock b) {
    double dot[kBlockColumns];  // softmax: sum dy * y; log_softmax: sum dy
    std::fill(dot, dot + b.width, 0.0);
    for (int64_t j = 0; j < l.length; ++j) {
      const T* dyj = dy + b.first + j * inner;
      const T* yj = y + b.first + j * inner;
      for (int64_t i = 0; i < b.width; ++i) {
        dot[i] += log ? static_cast<double>(dyj[i]) : static_cast<double>(dyj[i]) * static_cast<double>(yj[i]);
      }
    }
    for (int64_t j = 0; j < l.length; ++j) {
      const T* dyj = dy + b.first + j * inner;
      const T* yj = y + b.first + j * inner;
      T* dxj = dx + b.first + j * inner;
      for (int64_t i = 0; i < b.width; ++i) {
        const double g = static_cast<double>(dyj[i]), v = static_cast<double>(yj[i]);
        dxj[i] = static_cast<T>(log ? g - std::exp(v) * dot[i] : v * (g - dot[i]));
      }
    }
  });
}

#define CONVKIT_INSTANTIATE_SOFTMAX(T)                                                    \
  template void softmax_forward<T>(const SoftmaxLayout&, bool, const T*, T*);             \
  template void softmax_backward<T>(const SoftmaxLayout&, bool, const T*, const T*, T*);
CONVKIT_INSTANTIATE_SOFTMAX(float)
CONVKIT_INSTANTIATE_SOFTMAX(double)
#undef CONVKIT_INSTANTIATE_SOFTMAX

}  // namespace convkit
