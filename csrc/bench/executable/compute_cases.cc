// Compute-bound cases: GEMM and convolution (forward, dx, dw), rated against the FP32 FMA peak.
#include <memory>
#include <string>

#include "bench/executable/conv_suite.h"
#include "bench/executable/suite.h"
#include "bench/time_gemm.h"
#include "bench/timing.h"
#include "core/checked_math.h"
#include "ops/conv.h"

namespace convkit::bench {
namespace {

struct GemmShape {
  std::int64_t m, n, k;
  const char* what;
};

// The squares, and the GEMMs convolution produces in both orientations: M = C_out (the foundation issue's)
// and N = C_out (what channels-last convolution runs), as benchmarks/bench_gemm.py.
std::vector<GemmShape> gemm_shapes(bool quick) {
  if (quick) return {{64, 64, 64, "square 64"}, {128, 128, 128, "square 128"}, {392, 6, 25, "LeNet-like N=C_out"}};
  return {{256, 256, 256, "square 256"},
          {512, 512, 512, "square 512"},
          {1024, 1024, 1024, "square 1024"},
          {2048, 2048, 2048, "square 2048"},
          {64, 3136 * 8, 576, "conv3x3 64->64 @56 M=C_out"},
          {3136 * 8, 64, 576, "conv3x3 64->64 @56 N=C_out"},
          {256, 196 * 8, 2304, "conv3x3 256->256 @14 M=C_out"},
          {196 * 8, 256, 2304, "conv3x3 256->256 @14 N=C_out"},
          {6, 784 * 64, 25, "LeNet conv1 M=C_out"},
          {784 * 64, 6, 25, "LeNet conv1 N=C_out"}};
}

Case gemm_case(const GemmShape& s) {
  return {"gemm " + std::string(s.what),
          "m,n,k " + std::to_string(s.m) + "," + std::to_string(s.n) + "," + std::to_string(s.k),
          Bound::compute, 2.0 * double(s.m) * double(s.n) * double(s.k), 0,
          [s](int repeats) { return time_gemm<float>(s.m, s.n, s.k, false, false, repeats); }};
}

// The arrays of one layer's passes, allocated only for the pass that is timed.
struct ConvData {
  ConvGeometry g;
  std::vector<float> x, w, b, y, dy, dx, dw, db;
};

enum class ConvPass { forward, backward_data, backward_weights };

std::int64_t elements(std::int64_t batch, const std::array<std::int64_t, 3>& spatial, std::int64_t channels,
                      const char* what) {
  std::int64_t n = checked_mul(batch, channels, what);
  for (std::int64_t s : spatial) n = checked_mul(n, s, what);
  return n;
}

std::vector<double> time_conv(const ConvLayer& layer, ConvPass pass, int repeats) {
  auto d = std::make_unique<ConvData>();
  const ConvGeometry& g = d->g = layer.geometry();
  const std::int64_t x_size = elements(g.batch, g.in, g.in_channels, "conv x");
  const std::int64_t y_size = elements(g.batch, g.out, g.out_channels, "conv y");
  const std::int64_t w_size = elements(g.out_channels, g.kernel, g.in_channels / g.groups, "conv w");
  d->w = random_floats(w_size, 1);
  switch (pass) {
    case ConvPass::forward:
      d->x = random_floats(x_size, 2), d->b = random_floats(g.out_channels, 3), d->y.resize(y_size);
      return time_calls(repeats, [&] {
        conv_forward<float>(g, d->x.data(), d->w.data(), d->b.data(), d->y.data(), Activation::none, 0.0f);
      });
    case ConvPass::backward_data:
      d->dy = random_floats(y_size, 4), d->dx.resize(x_size);
      return time_calls(repeats, [&] { conv_backward_data<float>(g, d->dy.data(), d->w.data(), d->dx.data()); });
    case ConvPass::backward_weights:
      d->dy = random_floats(y_size, 4), d->x = random_floats(x_size, 2), d->dw.resize(w_size);
      d->db.resize(g.out_channels);
      return time_calls(repeats, [&] {
        conv_backward_weights<float>(g, d->dy.data(), d->x.data(), d->dw.data(), d->db.data());
      });
  }
  return {};
}

}  // namespace

std::vector<Case> compute_cases(bool quick) {
  std::vector<Case> cases;
  for (const GemmShape& s : gemm_shapes(quick)) cases.push_back(gemm_case(s));
  // dx and dw each cost one forward pass of FLOPs (the bias gradient is not counted).
  const std::pair<ConvPass, const char*> passes[] = {
      {ConvPass::forward, "fwd"}, {ConvPass::backward_data, "dx"}, {ConvPass::backward_weights, "dw"}};
  for (const ConvLayer& layer : conv_suite(quick)) {
    for (const auto& [pass, label] : passes) {
      cases.push_back({std::string(layer.depthwise() ? "depthwise " : "conv ") + layer.name + " " + label,
                       layer.describe(), Bound::compute, layer.forward_flops(), 0,
                       [layer, pass = pass](int repeats) { return time_conv(layer, pass, repeats); }});
    }
  }
  return cases;
}

}  // namespace convkit::bench
