// Dropout drivers (shapes and formulas in dropout.h). The forward pass draws the mask (one pass, see
// ops/random_fill.cc) and then applies it; the backward pass applies the saved mask to dy.
//
// Applying a mask walks x in runs: a stretch of x under one mask row (D elements under the bytes of row a),
// or, when D == 1 (stochastic depth), the B elements of one outer index a under the single byte mask[a].
// Threads take contiguous shares of the elements, and a run cut by a share boundary is done in two pieces.
#include "ops/dropout.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"
#include "ops/random_fill.h"

namespace convkit {
namespace {

using std::int64_t;

// v if keep, else +0 (whatever v is, inf and NaN included), by clearing v's bits. A plain select would do,
// but GCC does not vectorise a select that feeds floating-point arithmetic (which could trap), and the
// loops below then run at a mispredicted branch per element.
template <class T>
T kept_or_zero(T v, bool keep) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= Bits(0) - Bits(keep);
  std::memcpy(&v, &bits, sizeof bits);
  return v;
}

// y[k] = base[k] + (keep(k) ? x[k] * scale : 0) for the n elements of a run (base null: 0).
template <class T, class Keep>
void scale_run(int64_t n, Keep keep, double scale, const T* x, const T* base, T* y) {
  if (base) {
    for (int64_t k = 0; k < n; ++k) {
      y[k] = static_cast<T>(static_cast<double>(base[k]) + static_cast<double>(kept_or_zero(x[k], keep(k))) * scale);
    }
  } else {
    for (int64_t k = 0; k < n; ++k) y[k] = static_cast<T>(static_cast<double>(kept_or_zero(x[k], keep(k))) * scale);
  }
}

template <class T>
void apply_mask(const MaskLayout& l, const std::uint8_t* mask, double scale, const T* x, const T* base, T* y) {
  const int64_t total = l.outer * l.middle * l.inner;
  if (total == 0) return;
  const bool one_byte_per_outer = l.inner == 1;
  const int64_t run_length = one_byte_per_outer ? l.middle : l.inner;
  for_each_share(total, 1, [&](int64_t begin, int64_t end) {
    for (int64_t start = begin; start < end;) {
      const int64_t run = start / run_length, offset = start % run_length;
      const int64_t n = std::min(end - start, run_length - offset);
      const T* base_here = base ? base + start : nullptr;
      if (one_byte_per_outer) {
        const bool keep = mask[run] != 0;
        scale_run(n, [keep](int64_t) { return keep; }, scale, x + start, base_here, y + start);
      } else {
        const std::uint8_t* row = mask + run / l.middle * l.inner + offset;
        scale_run(n, [row](int64_t k) { return row[k] != 0; }, scale, x + start, base_here, y + start);
      }
      start += n;
    }
  });
}

}  // namespace

void check_mask_layout(const MaskLayout& l, double rate) {
  if (l.outer < 0 || l.middle < 0 || l.inner < 0) {
    throw std::invalid_argument("dropout: bad layout (" + std::to_string(l.outer) + ", " + std::to_string(l.middle) +
                                ", " + std::to_string(l.inner) + ")");
  }
  if (!(rate >= 0.0 && rate < 1.0)) throw std::invalid_argument("dropout: rate must be in [0, 1), got " + std::to_string(rate));
  checked_mul(checked_mul(l.outer, l.middle, "dropout size"), l.inner, "dropout size");
}

template <class T>
void dropout_forward(const MaskLayout& l, const philox::Stream& stream, double rate, const T* x, const T* base, T* y,
                     std::uint8_t* mask) {
  check_mask_layout(l, rate);
  fill_bernoulli(stream, l.mask_size(), 1.0 - rate, mask);
  apply_mask(l, mask, 1.0 / (1.0 - rate), x, base, y);
}

template <class T>
void dropout_backward(const MaskLayout& l, const std::uint8_t* mask, double rate, const T* dy, T* dx) {
  check_mask_layout(l, rate);
  apply_mask<T>(l, mask, 1.0 / (1.0 - rate), dy, nullptr, dx);
}

#define CONVKIT_INSTANTIATE_DROPOUT(T)                                                                           \
  template void dropout_forward<T>(const MaskLayout&, const philox::Stream&, double, const T*, const T*, T*,     \
                                   std::uint8_t*);                                                               \
  template void dropout_backward<T>(const MaskLayout&, const std::uint8_t*, double, const T*, T*);
CONVKIT_INSTANTIATE_DROPOUT(float)
CONVKIT_INSTANTIATE_DROPOUT(double)
#undef CONVKIT_INSTANTIATE_DROPOUT

}  // namespace convkit
