// Softmax and log-softmax along one axis.
//
// Shape legend: x, y, dy, dx are viewed as (outer, L, inner), contiguous; the op runs along L, separately
// for each of the outer * inner columns. With m = max_j x[j] and s = sum_j exp(x[j] - m) (in double):
//
//   softmax       y[j] = exp(x[j] - m) / s         dx[j] = y[j] * (dy[j] - sum_k dy[k] * y[k])   (from y)
//   log_softmax   y[j] = x[j] - m - log(s)         dx[j] = dy[j] - exp(y[j]) * sum_k dy[k]       (from y)
//
// Special values: a NaN in a column makes the whole column NaN. If a column holds +inf, the result is the
// limit: its +inf entries share the probability equally (softmax 1/count, log_softmax -log(count)) and the
// others get 0 (log_softmax -inf). A column of only -inf has no limit and gives NaN.
//
// Forward passes may run in place (y == x) and backward passes may write dx over dy. Results are
// independent of the thread count, bit for bit.
#pragma once
#include <cstdint>

namespace convkit {

struct SoftmaxLayout {
  std::int64_t outer, length, inner;
};

// Throws std::invalid_argument unless every size is >= 0 and the element count fits in int64.
void check_softmax_layout(const SoftmaxLayout& layout);

template <class T>
void softmax_forward(const SoftmaxLayout& layout, bool log, const T* x, T* y);

template <class T>
void softmax_backward(const SoftmaxLayout& layout, bool log, const T* dy, const T* y, T* dx);

}  // namespace convkit
