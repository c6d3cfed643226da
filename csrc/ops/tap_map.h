// Which source pixels, through which kernel offsets, feed each destination pixel of a convolution, one
// spatial axis at a time, with padding resolved by index mapping (source_index): the direct kernels'
// alternative to im2col (see ops/depthwise.cc).
//
//   forward:        the destination is an output index o; its taps are the pairs
//                   (i = source_index(o * stride - pad_before + k * dilation), k) whose i is not a zero,
//                   k ascending.
//   backward data:  the destination is an input index i; its taps are every pair (o, k) whose forward tap
//                   reads i, directly or as a reflected/replicated/wrapped copy, o ascending then k.
//
// A pixel's taps are the product of its three axes' taps, in D, H, W order.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/conv.h"

namespace convkit {

struct AxisTap {
  std::int64_t source, kernel;
};

class AxisTaps {
 public:
  static AxisTaps forward(const ConvGeometry& g, int axis);
  static AxisTaps backward_data(const ConvGeometry& g, int axis);

  std::int64_t destinations() const { return static_cast<std::int64_t>(first_.size()) - 1; }
  const AxisTap* begin(std::int64_t i) const { return taps_.data() + first_[i]; }
  const AxisTap* end(std::int64_t i) const { return taps_.data() + first_[i + 1]; }
  std::int64_t count(std::int64_t i) const { return first_[i + 1] - first_[i]; }
  std::int64_t max_count() const;

 private:
  std::vector<std::int64_t> first_;  // destination i's taps are taps_[first_[i], first_[i + 1])
  std::vector<AxisTap> taps_;
};

// Destination indices first, first + step, ..., first + (count - 1) * step whose taps have the same
// kernel offsets and sources that move by source_step from one index to the next: the pixels one
// microkernel call covers.
struct AxisRun {
  std::int64_t first, step, count, source_step;
};

// Splits the destinations into runs of indices `step` apart (1 for forward: consecutive outputs; the
// stride for backward data, where inputs one stride apart see the same kernel offsets), each run grown
// greedily from its lowest index, so that the interior of the axis is one run per residue class.
std::vector<AxisRun> find_runs(const AxisTaps& taps, std::int64_t step);

}  // namespace convkit
