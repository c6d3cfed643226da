// The convolution layers every benchmark of convkit measures: the eight of the shared reference table, plus
// conv1d 8x64x1024 -> 64 k3 and a 3x3 stride-2 64 -> 128 at 56x56 (benchmarks/bench_conv.py's LAYERS, in
// the same order and with the same names), and MobileNet's stride-2 depthwise 3x3. Channels-last, float32.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops/conv.h"

namespace convkit::bench {

// Kernel size, stride, padding and dilation are the same on every spatial axis.
struct ConvLayer {
  std::string name;
  std::int64_t batch, in_channels;
  std::vector<std::int64_t> spatial;  // 1 to 3 axes
  std::int64_t out_channels, kernel, stride = 1, padding = 0, dilation = 1, groups = 1;

  ConvGeometry geometry() const;
  double forward_flops() const;  // 2 * N * prod(out) * C_out * prod(kernel) * C_in / groups
  bool depthwise() const { return groups > 1 && groups == in_channels; }
  // As the shared table writes it, NCHW order: "8,64,56,56 -> 64, 3x3, p1" (s, p, d, g when not 1, 0, 1, 1).
  std::string describe() const;
  // A tiny version (batch 2, at most 16 channels and 12 pixels per axis), as bench_conv.py --quick.
  ConvLayer quick() const;
};

std::vector<ConvLayer> conv_suite(bool quick);

}  // namespace convkit::bench
