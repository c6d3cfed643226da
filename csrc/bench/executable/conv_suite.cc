#include "bench/executable/conv_suite.h"

#include <algorithm>

namespace convkit::bench {

ConvGeometry ConvLayer::geometry() const {
  ConvGeometry g{};
  g.batch = batch;
  g.in_channels = in_channels;
  g.out_channels = out_channels;
  g.groups = groups;
  g.mode = PaddingMode::zeros;
  const std::size_t first = 3 - spatial.size();  // leading size-1 axes, as ops/conv.h expects
  for (std::size_t a = 0; a < 3; ++a) {
    const bool used = a >= first;
    g.in[a] = used ? spatial[a - first] : 1;
    g.kernel[a] = used ? kernel : 1;
    g.stride[a] = used ? stride : 1;
    g.dilation[a] = used ? dilation : 1;
    g.pad_before[a] = used ? padding : 0;
    g.out[a] = (g.in[a] + 2 * g.pad_before[a] - g.dilation[a] * (g.kernel[a] - 1) - 1) / g.stride[a] + 1;
  }
  return g;
}

double ConvLayer::forward_flops() const {
  const ConvGeometry g = geometry();
  double flops = 2.0 * double(batch) * double(out_channels) * double(in_channels / groups);
  for (int a = 0; a < 3; ++a) flops *= double(g.out[a]) * double(g.kernel[a]);
  return flops;
}

std::string ConvLayer::describe() const {
  std::string text = std::to_string(batch) + "," + std::to_string(in_channels);
  for (std::int64_t s : spatial) text += "," + std::to_string(s);
  text += " -> " + std::to_string(out_channels) + ", ";
  for (std::size_t a = 0; a < spatial.size(); ++a) text += (a ? "x" : "") + std::to_string(kernel);
  if (stride != 1) text += ", s" + std::to_string(stride);
  if (padding != 0) text += ", p" + std::to_string(padding);
  if (dilation != 1) text += ", d" + std::to_string(dilation);
  if (groups != 1) text += ", g" + std::to_string(groups);
  return text;
}

ConvLayer ConvLayer::quick() const {
  ConvLayer tiny = *this;
  tiny.batch = 2;
  tiny.in_channels = std::min<std::int64_t>(in_channels, 16);
  tiny.out_channels = std::min<std::int64_t>(out_channels, 16);
  tiny.groups = std::min<std::int64_t>(groups, 16);
  for (std::int64_t& s : tiny.spatial) s = std::min<std::int64_t>(s, 12);
  return tiny;
}

std::vector<ConvLayer> conv_suite(bool quick) {
  std::vector<ConvLayer> layers = {
      {"conv3x3", 8, 64, {56, 56}, 64, 3, 1, 1},
      {"conv1x1", 8, 256, {56, 56}, 64, 1},
      {"stem7x7s2", 8, 3, {224, 224}, 64, 7, 2, 3},
      {"conv3x3-256", 8, 256, {14, 14}, 256, 3, 1, 1},
      {"depthwise3x3", 8, 128, {56, 56}, 128, 3, 1, 1, 1, 128},
      {"dilated3x3", 8, 64, {56, 56}, 64, 3, 1, 2, 2},
      {"lenet5x5", 64, 6, {14, 14}, 16, 5},
      {"conv3d", 8, 32, {16, 32, 32}, 32, 3, 1, 1},
      {"conv1d", 8, 64, {1024}, 64, 3, 1, 1},
      {"conv3x3s2", 8, 64, {56, 56}, 128, 3, 2, 1},
      {"depthwise3x3s2", 8, 64, {112, 112}, 64, 3, 2, 1, 1, 64},  // MobileNet's stride-2 depthwise
  };
  if (quick) {
    for (ConvLayer& layer : layers) layer = layer.quick();
  }
  return layers;
}

}  // namespace convkit::bench
