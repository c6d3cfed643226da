#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/pool.h"

namespace convkit::bindings {
namespace {

using Int64s = std::vector<std::int64_t>;
// One axis's windows as convkit/pool_spec.py's AxisWindows.as_core() gives them: begin, end, padded_count, step.
using AxisTuple = std::tuple<Int64s, Int64s, Int64s, std::int64_t>;
using Windows = std::array<AxisTuple, 3>;

// The geometry of a pooling from its 5-D channels-last input-side array (x or dx) and output-side array
// (y or dy), which must fit the windows. check_pool_geometry (in the core) checks the windows themselves.
PoolGeometry pool_geometry(const py::array& input, const py::array& output, const Windows& windows) {
  require_c_contiguous(input, "x", 5);
  require_c_contiguous(output, "y", 5);
  if (!input.dtype().equal(output.dtype())) throw py::type_error("pool arrays must share one dtype");
  PoolGeometry g{input.shape(0), input.shape(4), {input.shape(1), input.shape(2), input.shape(3)}, {}};
  for (int a = 0; a < 3; ++a) {
    const auto& [begin, end, padded_count, step] = windows[a];
    g.axes[a] = AxisWindows{begin, end, padded_count, step};
    if (output.shape(a + 1) != g.axes[a].out()) throw py::value_error("pool: y does not fit the windows");
  }
  if (output.shape(0) != g.batch || output.shape(4) != g.channels) {
    throw py::value_error("pool: x and y do not fit together");
  }
  return g;
}

const py::array& int64_indices(const py::array& indices, const py::array& output) {
  require_dtype<std::int64_t>(indices, "indices");
  require_c_contiguous(indices, "indices", 5);
  for (int a = 0; a < 5; ++a) {
    if (indices.shape(a) != output.shape(a)) throw py::value_error("pool: indices must have the output's shape");
  }
  return indices;
}

template <class T>
void max_forward(const py::array& x, py::array& y, const py::object& indices, const Windows& windows) {
  const PoolGeometry g = pool_geometry(x, y, windows);
  require_writeable(y, "y");
  std::int64_t* index_data = nullptr;
  if (!indices.is_none()) {
    auto arr = py::reinterpret_borrow<py::array>(indices);
    require_writeable(int64_indices(arr, y), "indices");
    index_data = out<std::int64_t>(arr);
  }
  py::gil_scoped_release release;
  max_pool_forward<T>(g, in<T>(x), out<T>(y), index_data);
}

template <class T>
void max_backward(const py::array& dy, const py::array& indices, py::array& dx, const Windows& windows) {
  const PoolGeometry g = pool_geometry(dx, dy, windows);
  require_writeable(dx, "dx");
  const std::int64_t* index_data = in<std::int64_t>(int64_indices(indices, dy));
  py::gil_scoped_release release;
  max_pool_backward<T>(g, in<T>(dy), index_data, out<T>(dx));
}

template <class T>
void avg_forward(const py::array& x, py::array& y, const Windows& windows, bool count_include_pad) {
  const PoolGeometry g = pool_geometry(x, y, windows);
  require_writeable(y, "y");
  py::gil_scoped_release release;
  avg_pool_forward<T>(g, in<T>(x), out<T>(y), count_include_pad);
}

template <class T>
void avg_backward(const py::array& dy, py::array& dx, const Windows& windows, bool count_include_pad) {
  const PoolGeometry g = pool_geometry(dx, dy, windows);
  require_writeable(dx, "dx");
  py::gil_scoped_release release;
  avg_pool_backward<T>(g, in<T>(dy), out<T>(dx), count_include_pad);
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def(
      "max_pool_forward",
      [](const py::array& x, py::array y, const py::object& indices, const Windows& windows) {
        by_dtype(x, "pool", [&] { max_forward<float>(x, y, indices, windows); },
                 [&] { max_forward<double>(x, y, indices, windows); });
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("windows"),
      "y (and int64 indices unless None) = window maxima of 5-D channels-last x. Use convkit.ops.max_pool.");
  m.def(
      "max_pool_backward",
      [](const py::array& dy, const py::array& indices, py::array dx, const Windows& windows) {
        by_dtype(dy, "pool", [&] { max_backward<float>(dy, indices, dx, windows); },
                 [&] { max_backward<double>(dy, indices, dx, windows); });
      },
      py::arg("dy"), py::arg("indices"), py::arg("dx"), py::arg("windows"),
      "dx = dy scattered to the argmax indices (5-D). Use convkit.ops.max_pool_backward.");
  m.def(
      "avg_pool_forward",
      [](const py::array& x, py::array y, const Windows& windows, bool count_include_pad) {
        by_dtype(x, "pool", [&] { avg_forward<float>(x, y, windows, count_include_pad); },
                 [&] { avg_forward<double>(x, y, windows, count_include_pad); });
      },
      py::arg("x"), py::arg("y"), py::arg("windows"), py::arg("count_include_pad"),
      "y = window means of 5-D channels-last x. Use convkit.ops.avg_pool.");
  m.def(
      "avg_pool_backward",
      [](const py::array& dy, py::array dx, const Windows& windows, bool count_include_pad) {
        by_dtype(dy, "pool", [&] { avg_backward<float>(dy, dx, windows, count_include_pad); },
                 [&] { avg_backward<double>(dy, dx, windows, count_include_pad); });
      },
      py::arg("dy"), py::arg("dx"), py::arg("windows"), py::arg("count_include_pad"),
      "dx = the gradient of the window means (5-D). Use convkit.ops.avg_pool_backward.");
}

}  // namespace convkit::bindings
