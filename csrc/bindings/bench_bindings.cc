// Timing loops that exclude Python: the C-level half of benchmarks/.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bench/fma_peak.h"
#include "bench/stream_copy.h"
#include "bench/time_gemm.h"
#include "bindings/module.h"

namespace convkit::bindings {

namespace py = pybind11;

void bind_bench(py::module_& m) {
  m.def(
      "bench_gemm",
      [](std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dtype, bool transpose_a, bool transpose_b,
         int repeats) {
        if (m < 1 || n < 1 || k < 1 || repeats < 1) throw py::value_error("bench_gemm needs positive sizes");
        py::gil_scoped_release release;
        if (dtype == "f32") return bench::time_gemm<float>(m, n, k, transpose_a, transpose_b, repeats);
        if (dtype == "f64") return bench::time_gemm<double>(m, n, k, transpose_a, transpose_b, repeats);
        throw py::value_error("dtype must be 'f32' or 'f64', got '" + dtype + "'");
      },
      py::arg("m"), py::arg("n"), py::arg("k"), py::arg("dtype") = "f32", py::arg("transpose_a") = false,
      py::arg("transpose_b") = false, py::arg("repeats") = 10,
      "Seconds per call of a (m x k) @ (k x n) GEMM with the selected kernel and thread count, timed in C++.");
  m.def(
      "fma_peak_gflops",
      [](int threads) {
        py::gil_scoped_release release;
        return bench::fma_peak_gflops(threads);
      },
      py::arg("threads"), "Measured FP32 FMA peak of this machine for `threads` threads, in GFLOP/s.");
  m.def(
      "bench_stream_copy",
      [](std::int64_t bytes, int threads, int repeats) {
        if (bytes < 1 || threads < 1 || repeats < 1) {
          throw py::value_error("bench_stream_copy needs positive bytes, threads and repeats");
        }
        py::gil_scoped_release release;
        return bench::time_stream_copy(bytes, threads, repeats);
      },
      py::arg("bytes"), py::arg("threads"), py::arg("repeats") = 10,
      "Seconds per call of a STREAM-like copy of `bytes` bytes between two aligned buffers on `threads` threads "
      "(2 * bytes moved per call), timed in C++.");
}

}  // namespace convkit::bindings
