// Memory-bound cases: im2col, max and average pooling, BatchNorm; GB/s of compulsory traffic against a copy
// of the input's size (the roof of benchmarks/bench_norm_pool.py; main.cc sets a floor of 1 MiB).
#include <algorithm>
#include <memory>
#include <string>

#include "bench/executable/conv_suite.h"
#include "bench/executable/suite.h"
#include "bench/timing.h"
#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "ops/im2col.h"
#include "ops/norm.h"
#include "ops/pool.h"

namespace convkit::bench {
namespace {

constexpr std::int64_t kFloat = sizeof(float);

std::string nhwc(const std::array<std::int64_t, 4>& shape) {
  std::string text;
  for (std::int64_t s : shape) text += (text.empty() ? "" : ",") + std::to_string(s);
  return text;
}

std::int64_t product(const std::array<std::int64_t, 4>& shape) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n = checked_mul(n, s, "benchmark array");
  return n;
}

// ---- im2col ------------------------------------------------------------------------------------------------

// The column matrix of a whole layer built tile by tile into one reused tile of about 1 MiB of rows, the
// threads splitting each tile's rows: how ops/conv.cc builds it for the weight gradient. Bytes: x read once,
// the column matrix written once.
Case im2col_case(const ConvLayer& layer) {
  const ConvGeometry g = layer.geometry();
  const std::int64_t x_size = checked_mul(checked_mul(g.batch, g.in[0] * g.in[1] * g.in[2], "x"), g.in_channels, "x");
  const std::int64_t pixels = checked_mul(g.batch, g.out[0] * g.out[1] * g.out[2], "im2col rows");
  const std::int64_t row_len = g.kernel[0] * g.kernel[1] * g.kernel[2] * g.in_channels;
  const double bytes = double(kFloat) * (double(x_size) + double(pixels) * double(row_len));
  return {"im2col " + layer.name, layer.describe(), Bound::memory, bytes, x_size * kFloat,
          [g, x_size, pixels, row_len](int repeats) {
            const std::vector<float> x = random_floats(x_size, 2);
            const std::int64_t tile_rows = std::max<std::int64_t>(96, (std::int64_t{1} << 20) / (row_len * kFloat));
            const WorkspaceCall call;
            const WorkspaceCharge tile_charge(checked_mul(checked_mul(tile_rows, row_len, "im2col tile"), kFloat,
                                                          "im2col tile"),
                                              "im2col tile");
            AlignedBuffer tile;
            float* cols = tile.reserve_elements<float>(tile_charge);
            const int threads = num_threads();
            return time_calls(repeats, [&] {
              for (std::int64_t p0 = 0; p0 < pixels; p0 += tile_rows) {
                const std::int64_t p1 = std::min(pixels, p0 + tile_rows);
                run_parallel(threads, [&](int tid, int team) {
                  const std::int64_t q0 = p0 + share_start(p1 - p0, tid, team);
                  const std::int64_t q1 = p0 + share_start(p1 - p0, tid + 1, team);
                  im2col_rows(g, x.data(), 0, q0, q1, cols + (q0 - p0) * row_len);
                });
              }
            });
          }};
}

// ---- pooling -----------------------------------------------------------------------------------------------

// One axis of a sliding window (dilation 1, floor mode), as convkit/pool_spec.py's sliding_windows.
AxisWindows sliding(std::int64_t n, std::int64_t k, std::int64_t stride, std::int64_t pad) {
  AxisWindows axis;
  for (std::int64_t o = 0; o < (n + 2 * pad - k) / stride + 1; ++o) {
    const std::int64_t start = o * stride - pad;
    axis.begin.push_back(std::max<std::int64_t>(0, start));
    axis.end.push_back(std::min(n, start + k));
    axis.padded_count.push_back(std::min(k - 1, n + pad - 1 - start) + 1);
  }
  return axis;
}

struct Pooling {
  const char* name;
  bool max;
  std::int64_t kernel, stride, pad;
};

enum class Pass { forward, backward };

Case pool_case(const Pooling& pool, Pass pass, const std::array<std::int64_t, 4>& shape) {
  PoolGeometry g{shape[0], shape[3], {1, shape[1], shape[2]}, {}};
  g.axes[0] = AxisWindows{{0}, {1}, {1}, 1};
  for (int a = 1; a < 3; ++a) g.axes[a] = sliding(shape[a], pool.kernel, pool.stride, pool.pad);
  const std::int64_t x_size = product(shape), y_size = shape[0] * g.axes[1].out() * g.axes[2].out() * shape[3];
  // Forward: x, y (max pooling without indices, as inference). Backward: dy, dx, and for max pooling the
  // int64 indices (two floats' worth per output).
  const std::int64_t output_arrays = pass == Pass::backward && pool.max ? 3 : 1;
  const double bytes = double(kFloat) * double(x_size + output_arrays * y_size);
  return {std::string(pool.max ? "maxpool " : "avgpool ") + pool.name + (pass == Pass::forward ? " fwd" : " bwd"),
          nhwc(shape), Bound::memory, bytes, x_size * kFloat, [g, pool, pass, x_size, y_size](int repeats) {
            const std::vector<float> x = random_floats(x_size, 2), dy = random_floats(y_size, 4);
            std::vector<float> y(y_size), dx(x_size);
            std::vector<std::int64_t> indices(y_size);
            if (pool.max) {
              max_pool_forward<float>(g, x.data(), y.data(), indices.data());
              if (pass == Pass::forward) {
                return time_calls(repeats, [&] { max_pool_forward<float>(g, x.data(), y.data(), nullptr); });
              }
              return time_calls(repeats, [&] { max_pool_backward<float>(g, dy.data(), indices.data(), dx.data()); });
            }
            if (pass == Pass::forward) {
              return time_calls(repeats, [&] { avg_pool_forward<float>(g, x.data(), y.data(), true); });
            }
            return time_calls(repeats, [&] { avg_pool_backward<float>(g, dy.data(), dx.data(), true); });
          }};
}

// ---- BatchNorm ---------------------------------------------------------------------------------------------

// Training mode: the forward takes the batch statistics and normalises (x read, y written: 2 S); the
// backward reads dy and x and writes dx (3 S). Statistics, gamma and beta (C values) are not counted.
Case batchnorm_case(Pass pass, const std::array<std::int64_t, 4>& shape) {
  const std::int64_t size = product(shape), channels = shape[3];
  const NormLayout layout{1, size / channels, channels, 1};
  return {std::string("batchnorm ") + (pass == Pass::forward ? "fwd" : "bwd"), nhwc(shape), Bound::memory,
          double(kFloat) * double(size) * (pass == Pass::forward ? 2 : 3), size * kFloat,
          [layout, pass, size, channels](int repeats) {
            const std::vector<float> x = random_floats(size, 2), dy = random_floats(size, 4);
            const std::vector<float> gamma = random_floats(channels, 5), beta = random_floats(channels, 6);
            std::vector<float> y(size), dx(size), dgamma(channels), dbeta(channels);
            std::vector<double> mean(channels), var(channels), inv_std(channels);
            auto forward = [&] {
              norm_normalize<float>(layout, x.data(), 1e-5, gamma.data(), beta.data(), y.data(), mean.data(),
                                    var.data(), inv_std.data());
            };
            if (pass == Pass::forward) return time_calls(repeats, forward);
            forward();
            return time_calls(repeats, [&] {
              norm_backward<float>(layout, dy.data(), x.data(), mean.data(), inv_std.data(), gamma.data(), true,
                                   dx.data(), dgamma.data(), dbeta.data());
            });
          }};
}

}  // namespace

std::vector<Case> memory_cases(bool quick) {
  std::vector<Case> cases;
  for (const ConvLayer& layer : conv_suite(quick)) {
    const bool pointwise = layer.kernel == 1 && layer.stride == 1 && layer.padding == 0;
    if (layer.groups == 1 && !pointwise) cases.push_back(im2col_case(layer));  // x itself is a 1x1's columns
  }
  // bench_norm_pool.py's two shapes; --quick: small ones (256 KiB and 64 KiB).
  const std::array<std::int64_t, 4> shapes[2] = {quick ? std::array<std::int64_t, 4>{2, 32, 32, 32}
                                                       : std::array<std::int64_t, 4>{8, 56, 56, 64},
                                                 quick ? std::array<std::int64_t, 4>{2, 8, 8, 128}
                                                       : std::array<std::int64_t, 4>{8, 14, 14, 256}};
  const Pooling poolings[] = {{"2x2/2", true, 2, 2, 0}, {"3x3/2 p1", true, 3, 2, 1}, {"2x2/2", false, 2, 2, 0}};
  for (const Pooling& pool : poolings) {
    for (const auto& shape : shapes) {
      for (Pass pass : {Pass::forward, Pass::backward}) cases.push_back(pool_case(pool, pass, shape));
    }
  }
  for (const auto& shape : shapes) {
    for (Pass pass : {Pass::forward, Pass::backward}) cases.push_back(batchnorm_case(pass, shape));
  }
  return cases;
}

}  // namespace convkit::bench
