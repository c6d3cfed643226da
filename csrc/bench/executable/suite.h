// The benchmark cases of the convkit-bench executable: what is timed, how much work it is, and its roof.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace convkit::bench {

// Compute-bound cases are rated in GFLOP/s against the FP32 FMA peak; memory-bound ones in GB/s of
// compulsory traffic (every array read or written once) against a copy of roof_bytes bytes.
enum class Bound { compute, memory };

struct Case {
  std::string name;     // "conv conv3x3 fwd": family, case, pass (what --filter matches, with `problem`)
  std::string problem;  // the shapes, e.g. "8,64,56,56 -> 64, 3x3, p1"
  Bound bound;
  double work;                 // FLOPs (compute) or bytes moved (memory) per call
  std::int64_t roof_bytes = 0;  // memory-bound: the size of the copy this case is compared with
  // Allocates and fills the case's data, then returns the seconds of `repeats` timed calls after one warm-up.
  // The data live only during the call, so a filtered run allocates only what it times.
  std::function<std::vector<double>(int repeats)> time;
};

// GEMM (square and the shapes convolution produces), im2col, and convolution forward, dx and dw for the
// conv suite (depthwise layers included, under the family "depthwise"). quick: tiny versions.
std::vector<Case> compute_cases(bool quick);

// im2col of the conv suite's layers; max and average pooling and BatchNorm (training), forward and backward.
std::vector<Case> memory_cases(bool quick);

// `count` floats uniform in [-1, 1), the same for the same seed.
std::vector<float> random_floats(std::int64_t count, unsigned seed);

}  // namespace convkit::bench
