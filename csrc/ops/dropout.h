// Dropout and its relatives, which differ only in what one random keep/drop decision covers.
//
// Shape legend: x is viewed as (A, B, D), contiguous; the mask holds one byte per (a, d), 1 = keep, and is
// broadcast over b. keep = 1 - rate, scale = 1 / keep (inverted dropout: the expectation is unchanged).
//
//   dropout          x (any shape)           -> (1, 1, size)       mask (size,)  one decision per element
//   spatial dropout  x (N, *spatial, C)      -> (N, prod(spatial), C)  mask (N, C)  per feature map
//   stochastic depth branch (N, ...)         -> (N, size / N, 1)   mask (N,)     per sample
//   (DropConnect is dropout applied to a weight array.)
//
//   forward   mask[a, d] ~ Bernoulli(keep), drawn from `stream` as fill_bernoulli (ops/random_fill.h) does
//             y[a, b, d] = base[a, b, d] + (mask[a, d] ? x[a, b, d] * scale : 0)     (base null: 0)
//   backward  dx[a, b, d] = mask[a, d] ? dy[a, b, d] * scale : 0
//             (stochastic depth: the shortcut's gradient is dy itself)
//
// A dropped element is exactly 0 (or base) even where x is inf or NaN. The products are computed in
// double and rounded once. Elements are independent, so results are the same for any thread count.
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace convkit {

struct MaskLayout {
  std::int64_t outer, middle, inner;  // A, B, D

  std::int64_t mask_size() const { return outer * inner; }
};

// Throws std::invalid_argument unless every extent is >= 0 and rate is in [0, 1), and std::overflow_error
// if the size does not fit int64.
void check_mask_layout(const MaskLayout& layout, double rate);

// Draws the mask (A * D bytes, overwritten) and writes y (x's shape). base may be null.
template <class T>
void dropout_forward(const MaskLayout& layout, const philox::Stream& stream, double rate, const T* x, const T* base,
                     T* y, std::uint8_t* mask);

// dx (dy's shape) = dy masked and scaled by the forward's mask.
template <class T>
void dropout_backward(const MaskLayout& layout, const std::uint8_t* mask, double rate, const T* dy, T* dx);

}  // namespace convkit
