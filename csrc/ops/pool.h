// Pooling (rank 1..3), channels-last: max and average over windows given per axis, which serves sliding
// windows (stride, padding, dilation, ceil_mode), adaptive bins and global pooling alike. The Python layer
// (convkit/pool_spec.py) turns the options into the windows; the core only checks they lie in the input.
//
// Shape legend: N batch, S = in[0..2] input spatial (D, H, W), O = out[0..2] output spatial, C channels.
//
//   x, dx:   (N, S[0], S[1], S[2], C)   contiguous
//   y, dy:   (N, O[0], O[1], O[2], C)   contiguous
//   indices: (N, O[0], O[1], O[2], C)   int64: the argmax's flat spatial index (d * S[1] + h) * S[2] + w
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace convkit {

// The windows of one axis: output index o reads input indices begin[o], begin[o] + step, ... < end[o].
// padded_count[o] is the window's size counting padding (average pooling's count_include_pad divisor).
struct AxisWindows {
  std::vector<std::int64_t> begin, end, padded_count;
  std::int64_t step = 1;

  std::int64_t out() const { return static_cast<std::int64_t>(begin.size()); }
  std::int64_t valid_count(std::int64_t o) const { return (end[o] - begin[o] - 1) / step + 1; }
};

struct PoolGeometry {
  std::int64_t batch, channels;
  std::array<std::int64_t, 3> in;
  std::array<AxisWindows, 3> axes;
};

// Throws std::invalid_argument unless batch >= 0, every other size is positive, every window is a non-empty
// range of the input with a step in [1, input extent] and padded_count >= its number of taps, and every size
// fits int64: the last guard between a direct caller of convkit._C and an out-of-bounds access.
void check_pool_geometry(const PoolGeometry& g);

// y = the maximum of each window; the first maximum in window order (D, then H, then W) wins ties, and a
// NaN wins over any number (the first NaN of the window). indices (may be null) receives its position.
template <class T>
void max_pool_forward(const PoolGeometry& g, const T* x, T* y, std::int64_t* indices);

// dx (overwritten) = dy scattered to the argmax positions in `indices`. Throws std::invalid_argument, naming
// it, if an index is not a position its window reads (indices must come from max_pool_forward).
template <class T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const std::int64_t* indices, T* dx);

// y = the sum of each window divided by its padded_count (count_include_pad) or its number of input taps.
template <class T>
void avg_pool_forward(const PoolGeometry& g, const T* x, T* y, bool count_include_pad);

// dx (overwritten) = the gradient of sum(dy * avg_pool(x)): each dy spread over its window's input taps.
template <class T>
void avg_pool_backward(const PoolGeometry& g, const T* dy, T* dx, bool count_include_pad);

}  // namespace convkit
