// Softmax drivers (formulas in softmax.h). A task is one outer index and a block of up to kBlockColumns
// adjacent inner columns; every pass loops over the axis outside and the block's columns inside, so the
// inner loop runs over contiguous memory whatever the axis (for the last axis, inner = 1 and a block is a
// single row). Tasks are split over the threads in contiguous shares; a column is always computed by one
// thread in axis order, so results do not depend on the thread count. Sums are in double for float32 too.
// The exponentials of a block are taken by the selected exp kernel (kernels/exp_ukernel.h) in chunks.
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "kernels/registry.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kBlockColumns = 64;
constexpr int kExpCost = 4;  // a vectorised exp costs about as much as 4 cheap operations (thread-count heuristic)

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

// Runs chunk(j0, j1, buffer) over the rows [0, length) of a block `width` columns wide, in groups of rows
// whose values fill at most kChunkValues of `buffer` (row-major: (j - j0) * width + i), so that the exp
// kernel runs on whole chunks, for the last axis (width 1) as for any other.
constexpr int64_t kChunkValues = 256;

template <class Chunk>
void for_each_chunk(int64_t length, int64_t width, Chunk&& chunk) {
  double buffer[kChunkValues];
  const int64_t rows = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(1, width));
  for (int64_t j0 = 0; j0 < length; j0 += rows) chunk(j0, std::min(length, j0 + rows), buffer);
}

// x - m, except that when m = +inf, the +inf entries give 0 and the others -inf (the limit of the column).
double shifted(double x, double m) {
  if (m == std::numeric_limits<double>::infinity()) return x == m ? 0.0 : -m;
  return x - m;
}

// One block of columns. kWidth > 0 fixes the width at compile time: with kWidth = 1 (the last axis), the
// loops over the columns disappear and the column's running max and sum stay in registers.
template <int kWidth, class T>
void forward_block(const SoftmaxLayout& l, bool log, const ExpUkernel& exp, ColumnBlock b, const T* x, T* y) {
  const int64_t inner = l.inner, width = kWidth > 0 ? kWidth : b.width;
  double max[kBlockColumns], sum[kBlockColumns];
  std::fill(max, max + width, -std::numeric_limits<double>::infinity());
  std::fill(sum, sum + width, 0.0);
  for (int64_t j = 0; j < l.length; ++j) {
    const T* xj = x + b.first + j * inner;
    for (int64_t i = 0; i < width; ++i) {
      const double v = static_cast<double>(xj[i]);
      if (v > max[i] || v != v) max[i] = v;  // a NaN stays: nothing compares greater than it
    }
  }
  // softmax stores exp(x - m) in y and scales it afterwards; log_softmax only sums here, and writes y
  // from x in its last pass (x is still intact then, even in place).
  for_each_chunk(l.length, width, [&](int64_t j0, int64_t j1, double* e) {
    for (int64_t j = j0; j < j1; ++j) {
      const T* xj = x + b.first + j * inner;
      for (int64_t i = 0; i < width; ++i) e[(j - j0) * width + i] = shifted(static_cast<double>(xj[i]), max[i]);
    }
    exp.exp(e, e, (j1 - j0) * width);
    for (int64_t j = j0; j < j1; ++j) {
      T* yj = y + b.first + j * inner;
      for (int64_t i = 0; i < width; ++i) {
        sum[i] += e[(j - j0) * width + i];
        if (!log) yj[i] = static_cast<T>(e[(j - j0) * width + i]);
      }
    }
  });
  for (int64_t i = 0; i < width; ++i) sum[i] = log ? std::log(sum[i]) : 1.0 / sum[i];
  for (int64_t j = 0; j < l.length; ++j) {
    const T* xj = x + b.first + j * inner;
    T* yj = y + b.first + j * inner;
    for (int64_t i = 0; i < width; ++i) {
      yj[i] = static_cast<T>(log ? shifted(static_cast<double>(xj[i]), max[i]) - sum[i]
                                 : static_cast<double>(yj[i]) * sum[i]);
    }
  }
}

template <int kWidth, class T>
void backward_block(const SoftmaxLayout& l, bool log, const ExpUkernel& exp, ColumnBlock b, const T* dy,
                    const T* y, T* dx) {
  const int64_t inner = l.inner, width = kWidth > 0 ? kWidth : b.width;
  double dot[kBlockColumns];  // softmax: sum dy * y; log_softmax: sum dy
  std::fill(dot, dot + width, 0.0);
  for (int64_t j = 0; j < l.length; ++j) {
    const T* dyj = dy + b.first + j * inner;
    const T* yj = y + b.first + j * inner;
    for (int64_t i = 0; i < width; ++i) {
      dot[i] += log ? static_cast<double>(dyj[i]) : static_cast<double>(dyj[i]) * static_cast<double>(yj[i]);
    }
  }
  if (!log) {
    for (int64_t j = 0; j < l.length; ++j) {
      const T* dyj = dy + b.first + j * inner;
      const T* yj = y + b.first + j * inner;
      T* dxj = dx + b.first + j * inner;
      for (int64_t i = 0; i < width; ++i) {
        const double v = static_cast<double>(yj[i]);
        dxj[i] = static_cast<T>(v * (static_cast<double>(dyj[i]) - dot[i]));
      }
    }
    return;
  }
  for_each_chunk(l.length, width, [&](int64_t j0, int64_t j1, double* p) {  // p = exp(y), the probabilities
    for (int64_t j = j0; j < j1; ++j) {
      const T* yj = y + b.first + j * inner;
      for (int64_t i = 0; i < width; ++i) p[(j - j0) * width + i] = static_cast<double>(yj[i]);
    }
    exp.exp(p, p, (j1 - j0) * width);
    for (int64_t j = j0; j < j1; ++j) {
      const T* dyj = dy + b.first + j * inner;
      T* dxj = dx + b.first + j * inner;
      for (int64_t i = 0; i < width; ++i) {
        dxj[i] = static_cast<T>(static_cast<double>(dyj[i]) - p[(j - j0) * width + i] * dot[i]);
      }
    }
  });
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
  const ExpUkernel& exp = selected_exp_ukernel();
  for_each_block(l, kExpCost, [&](ColumnBlock b) {
    if (l.inner == 1) return forward_block<1>(l, log, exp, b, x, y);
    forward_block<0>(l, log, exp, b, x, y);
  });
}

template <class T>
void softmax_backward(const SoftmaxLayout& l, bool log, const T* dy, const T* y, T* dx) {
  const ExpUkernel& exp = selected_exp_ukernel();
  for_each_block(l, log ? kExpCost : 1, [&](ColumnBlock b) {
    if (l.inner == 1) return backward_block<1>(l, log, exp, b, dy, y, dx);
    backward_block<0>(l, log, exp, b, dy, y, dx);
  });
}

#define CONVKIT_INSTANTIATE_SOFTMAX(T)                                                    \
  template void softmax_forward<T>(const SoftmaxLayout&, bool, const T*, T*);             \
  template void softmax_backward<T>(const SoftmaxLayout&, bool, const T*, const T*, T*);
CONVKIT_INSTANTIATE_SOFTMAX(float)
CONVKIT_INSTANTIATE_SOFTMAX(double)
#undef CONVKIT_INSTANTIATE_SOFTMAX

}  // namespace convkit
