#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/conv.h"

namespace convkit::bindings {
namespace {

using Triple = std::array<std::int64_t, 3>;

PaddingMode parse_padding_mode(const std::string& name) {
  if (name == "zeros") return PaddingMode::zeros;
  if (name == "reflect") return PaddingMode::reflect;
  if (name == "replicate") return PaddingMode::replicate;
  if (name == "circular") return PaddingMode::circular;
  throw py::value_error("padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got '" + name + "'");
}

template <class T>
void conv_forward_into(const py::array& x, const py::array& w, const py::object& bias, py::array& y,
                       const ConvGeometry& geometry, Activation activation, double negative_slope) {
  require_dtype<T>(x, "x");
  require_dtype<T>(w, "w");
  require_dtype<T>(y, "y");
  const T* bias_data = optional_bias<T>(bias, geometry.out_channels);
  if (!y.writeable()) throw py::value_error("y is read-only");
  py::gil_scoped_release release;
  conv_forward<T>(geometry, static_cast<const T*>(x.data()), static_cast<const T*>(w.data()), bias_data,
                  static_cast<T*>(y.mutable_data()), activation, static_cast<T>(negative_slope));
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def(
      "conv_forward",
      [](const py::array& x, const py::array& w, const py::object& bias, py::array y, Triple stride,
         Triple dilation, Triple pad_before, std::int64_t groups, const std::string& padding_mode,
         const std::string& activation, double negative_slope) {
        require_c_contiguous(x, "x", 5);
        require_c_contiguous(w, "w", 5);
        require_c_contiguous(y, "y", 5);
        ConvGeometry g{x.shape(0), x.shape(4), w.shape(4), groups,
                       {x.shape(1), x.shape(2), x.shape(3)}, {y.shape(1), y.shape(2), y.shape(3)},
                       {w.shape(0), w.shape(1), w.shape(2)}, stride, dilation, pad_before,
                       parse_padding_mode(padding_mode)};
        if (groups < 1 || w.shape(3) * groups != g.in_channels || y.shape(0) != g.batch ||
            y.shape(4) != g.out_channels) {
          throw py::value_error("conv_forward: x, w, y and groups do not fit together");
        }
        const Activation act = parse_activation(activation);
        if (x.dtype().equal(py::dtype::of<float>())) {
          conv_forward_into<float>(x, w, bias, y, g, act, negative_slope);
        } else {
          conv_forward_into<double>(x, w, bias, y, g, act, negative_slope);
        }
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("stride"), py::arg("dilation"),
      py::arg("pad_before"), py::arg("groups"), py::arg("padding_mode"), py::arg("activation"),
      py::arg("negative_slope"),
      "y = act(conv(x, w) + bias) on 5-D channels-last arrays (N, D, H, W, C). Use convkit.ops.conv.");
}

}  // namespace convkit::bindings
