// Bindings of the activation drivers (ops/activation.h, ops/softmax.h, ops/maxout.h). Arrays arrive
// C-contiguous in the drivers' views: any shape for pointwise ops (read as flat), (R, C) for PReLU,
// (outer, L, inner) for softmax, (R, C, k) and (R, C) for maxout. Every array of a call shares one dtype.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "bindings/pointwise_names.h"
#include "ops/activation.h"
#include "ops/maxout.h"
#include "ops/softmax.h"

namespace convkit::bindings {
namespace {

// `arr` as a C-contiguous array of T with exactly `shape_of`'s shape (any number of axes).
template <class T>
void require_like(const py::array& arr, const py::array& shape_of, const char* name) {
  require_dtype<T>(arr, name);
  require_c_contiguous(arr, name, static_cast<int>(shape_of.ndim()));
  for (int axis = 0; axis < shape_of.ndim(); ++axis) {
    if (arr.shape(axis) != shape_of.shape(axis)) throw py::value_error(std::string(name) + " has the wrong shape");
  }
}

template <class T>
T* writeable(py::array& arr, const char* name) {
  require_writeable(arr, name);
  return out<T>(arr);
}

template <class T>
void pointwise(const py::array& x, py::array& y, Pointwise op, double alpha) {
  require_like<T>(x, x, "x");
  require_like<T>(y, x, "y");
  const T* xd = in<T>(x);
  T* yd = writeable<T>(y, "y");
  py::gil_scoped_release release;
  pointwise_forward<T>(op, alpha, x.size(), xd, yd);
}

template <class T>
void pointwise_gradient(const py::array& dy, const py::array& saved, py::array& dx, Pointwise op, double alpha) {
  require_like<T>(saved, saved, "saved");
  require_like<T>(dy, saved, "dy");
  require_like<T>(dx, saved, "dx");
  const T* dyd = in<T>(dy);
  const T* sd = in<T>(saved);
  T* dxd = writeable<T>(dx, "dx");
  py::gil_scoped_release release;
  pointwise_backward<T>(op, alpha, saved.size(), dyd, sd, dxd);
}

template <class T>
void prelu(const py::array& x, const py::array& slope, py::array& y) {
  require_c_contiguous(x, "x", 2);
  require_like<T>(x, x, "x");
  require_like<T>(y, x, "y");
  require_like<T>(slope, slope, "slope");
  const T* xd = in<T>(x);
  const T* sd = in<T>(slope);
  T* yd = writeable<T>(y, "y");
  py::gil_scoped_release release;
  prelu_forward<T>(x.shape(0), x.shape(1), xd, sd, slope.size(), yd);
}

template <class T>
void prelu_gradient(const py::array& dy, const py::array& x, const py::array& slope, py::array& dx,
                    py::array& dslope) {
  require_c_contiguous(x, "x", 2);
  require_like<T>(x, x, "x");
  require_like<T>(dy, x, "dy");
  require_like<T>(dx, x, "dx");
  require_like<T>(slope, slope, "slope");
  require_like<T>(dslope, slope, "dslope");
  const T* dyd = in<T>(dy);
  const T* xd = in<T>(x);
  const T* sd = in<T>(slope);
  T* dxd = writeable<T>(dx, "dx");
  T* dsd = writeable<T>(dslope, "dslope");
  py::gil_scoped_release release;
  prelu_backward<T>(x.shape(0), x.shape(1), dyd, xd, sd, slope.size(), dxd, dsd);
}

SoftmaxLayout softmax_layout(const py::array& x) {
  require_c_contiguous(x, "x", 3);
  return {x.shape(0), x.shape(1), x.shape(2)};
}

template <class T>
void softmax(const py::array& x, py::array& y, bool log) {
  const SoftmaxLayout l = softmax_layout(x);
  require_like<T>(x, x, "x");
  require_like<T>(y, x, "y");
  const T* xd = in<T>(x);
  T* yd = writeable<T>(y, "y");
  py::gil_scoped_release release;
  softmax_forward<T>(l, log, xd, yd);
}

template <class T>
void softmax_gradient(const py::array& dy, const py::array& y, py::array& dx, bool log) {
  const SoftmaxLayout l = softmax_layout(y);
  require_like<T>(y, y, "y");
  require_like<T>(dy, y, "dy");
  require_like<T>(dx, y, "dx");
  const T* dyd = in<T>(dy);
  const T* yd = in<T>(y);
  T* dxd = writeable<T>(dx, "dx");
  py::gil_scoped_release release;
  softmax_backward<T>(l, log, dyd, yd, dxd);
}

// x (R, C, k) and y (R, C), checked together.
template <class T>
void require_maxout_pair(const py::array& x, const py::array& y, const char* y_name) {
  require_c_contiguous(x, "x", 3);
  require_like<T>(x, x, "x");
  require_c_contiguous(y, y_name, 2);
  require_dtype<T>(y, y_name);
  if (y.shape(0) != x.shape(0) || y.shape(1) != x.shape(1)) {
    throw py::value_error(std::string(y_name) + " must have shape (R, C) of x (R, C, k)");
  }
}

template <class T>
void maxout(const py::array& x, py::array& y) {
  require_maxout_pair<T>(x, y, "y");
  const T* xd = in<T>(x);
  T* yd = writeable<T>(y, "y");
  py::gil_scoped_release release;
  maxout_forward<T>(x.shape(0), x.shape(1), x.shape(2), xd, yd);
}

template <class T>
void maxout_gradient(const py::array& dy, const py::array& x, py::array& dx) {
  require_maxout_pair<T>(x, dy, "dy");
  require_like<T>(dx, x, "dx");
  const T* dyd = in<T>(dy);
  const T* xd = in<T>(x);
  T* dxd = writeable<T>(dx, "dx");
  py::gil_scoped_release release;
  maxout_backward<T>(x.shape(0), x.shape(1), x.shape(2), dyd, xd, dxd);
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def(
      "pointwise_forward",
      [](const py::array& x, py::array y, const std::string& name, double alpha) {
        const Pointwise op = parse_pointwise(name);
        by_dtype(x, "activation", [&] { pointwise<float>(x, y, op, alpha); },
                 [&] { pointwise<double>(x, y, op, alpha); });
      },
      py::arg("x"), py::arg("y"), py::arg("name"), py::arg("alpha"),
      "y = activation(x), elementwise; y may be x. Use convkit.ops.");
  m.def(
      "pointwise_backward",
      [](const py::array& dy, const py::array& saved, py::array dx, const std::string& name, double alpha) {
        const Pointwise op = parse_pointwise(name);
        by_dtype(saved, "activation", [&] { pointwise_gradient<float>(dy, saved, dx, op, alpha); },
                 [&] { pointwise_gradient<double>(dy, saved, dx, op, alpha); });
      },
      py::arg("dy"), py::arg("saved"), py::arg("dx"), py::arg("name"), py::arg("alpha"),
      "dx of a pointwise activation from dy and the saved y or x; dx may be dy. Use convkit.ops.");
  m.def(
      "prelu_forward",
      [](const py::array& x, const py::array& slope, py::array y) {
        by_dtype(x, "prelu", [&] { prelu<float>(x, slope, y); }, [&] { prelu<double>(x, slope, y); });
      },
      py::arg("x"), py::arg("slope"), py::arg("y"), "y = prelu(x (R, C), slope (C,) or (1,)). Use convkit.ops.");
  m.def(
      "prelu_backward",
      [](const py::array& dy, const py::array& x, const py::array& slope, py::array dx, py::array dslope) {
        by_dtype(x, "prelu", [&] { prelu_gradient<float>(dy, x, slope, dx, dslope); },
                 [&] { prelu_gradient<double>(dy, x, slope, dx, dslope); });
      },
      py::arg("dy"), py::arg("x"), py::arg("slope"), py::arg("dx"), py::arg("dslope"),
      "dx and dslope of prelu (written). Use convkit.ops.prelu_backward.");
  m.def(
      "softmax_forward",
      [](const py::array& x, py::array y, bool log) {
        by_dtype(x, "softmax", [&] { softmax<float>(x, y, log); }, [&] { softmax<double>(x, y, log); });
      },
      py::arg("x"), py::arg("y"), py::arg("log"),
      "(log_)softmax of x (outer, L, inner) along L; y may be x. Use convkit.ops.");
  m.def(
      "softmax_backward",
      [](const py::array& dy, const py::array& y, py::array dx, bool log) {
        by_dtype(y, "softmax", [&] { softmax_gradient<float>(dy, y, dx, log); },
                 [&] { softmax_gradient<double>(dy, y, dx, log); });
      },
      py::arg("dy"), py::arg("y"), py::arg("dx"), py::arg("log"),
      "dx of (log_)softmax from dy and its output y, (outer, L, inner). Use convkit.ops.");
  m.def(
      "maxout_forward",
      [](const py::array& x, py::array y) {
        by_dtype(x, "maxout", [&] { maxout<float>(x, y); }, [&] { maxout<double>(x, y); });
      },
      py::arg("x"), py::arg("y"), "y (R, C) = max over k of x (R, C, k). Use convkit.ops.maxout.");
  m.def(
      "maxout_backward",
      [](const py::array& dy, const py::array& x, py::array dx) {
        by_dtype(x, "maxout", [&] { maxout_gradient<float>(dy, x, dx); },
                 [&] { maxout_gradient<double>(dy, x, dx); });
      },
      py::arg("dy"), py::arg("x"), py::arg("dx"), "dx (R, C, k) of maxout. Use convkit.ops.maxout_backward.");
}

}  // namespace convkit::bindings
