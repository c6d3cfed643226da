#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/gemm.h"

namespace convkit::bindings {
namespace {

template <class T>
void gemm_into(const py::array& a, const py::array& b, py::array& c, double alpha, double beta, bool transpose_a,
               bool transpose_b, const py::object& bias, const std::string& activation, double negative_slope) {
  MatrixRef<const T> av = const_matrix<T>(a, "a"), bv = const_matrix<T>(b, "b");
  if (transpose_a) av = av.transposed();
  if (transpose_b) bv = bv.transposed();
  MatrixRef<T> cv = output_matrix<T>(c, "c");
  const GemmEpilogue<T> epilogue{optional_bias<T>(bias, cv.cols), parse_activation(activation),
                                 static_cast<T>(negative_slope)};
  py::gil_scoped_release release;
  gemm<T>(av, bv, cv, static_cast<T>(alpha), static_cast<T>(beta), epilogue);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](const py::array& a, const py::array& b, py::array c, double alpha, double beta, bool transpose_a,
         bool transpose_b, const py::object& bias, const std::string& activation, double negative_slope) {
        if (a.dtype().equal(py::dtype::of<float>())) {
          gemm_into<float>(a, b, c, alpha, beta, transpose_a, transpose_b, bias, activation, negative_slope);
        } else if (a.dtype().equal(py::dtype::of<double>())) {
          gemm_into<double>(a, b, c, alpha, beta, transpose_a, transpose_b, bias, activation, negative_slope);
        } else {
          throw py::type_error("gemm supports float32 and float64, got " + std::string(py::str(a.dtype())));
        }
      },
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha"), py::arg("beta"), py::arg("transpose_a"),
      py::arg("transpose_b"), py::arg("bias"), py::arg("activation"), py::arg("negative_slope"),
      "c = act(alpha * op(a) @ op(b) + beta * c + bias), in place. Use convkit.ops.gemm, which validates.");
}

}  // namespace convkit::bindings
