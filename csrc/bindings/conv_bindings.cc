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

// The options every conv entry point takes, in Python's argument order.
struct ConvOptions {
  Triple stride, dilation, pad_before;
  std::int64_t groups;
  std::string padding_mode;
};

// The geometry of a conv from its three 5-D channels-last arrays x (N, D, H, W, C), w (kD, kH, kW, C/G, F)
// and y (N, oD, oH, oW, F), whichever of them is an input or an output of the entry point.
ConvGeometry conv_geometry(const py::array& x, const py::array& w, const py::array& y, const ConvOptions& o) {
  require_c_contiguous(x, "x", 5);
  require_c_contiguous(w, "w", 5);
  require_c_contiguous(y, "y", 5);
  if (!x.dtype().equal(w.dtype()) || !x.dtype().equal(y.dtype())) throw py::type_error("conv arrays must share one dtype");
  ConvGeometry g{x.shape(0), x.shape(4), w.shape(4), o.groups,
                 {x.shape(1), x.shape(2), x.shape(3)}, {y.shape(1), y.shape(2), y.shape(3)},
                 {w.shape(0), w.shape(1), w.shape(2)}, o.stride, o.dilation, o.pad_before,
                 parse_padding_mode(o.padding_mode)};
  if (o.groups < 1 || w.shape(3) * o.groups != g.in_channels || y.shape(0) != g.batch || y.shape(4) != g.out_channels) {
    throw py::value_error("conv: x, w, y and groups do not fit together");
  }
  return g;
}

template <class T>
void forward(const py::array& x, const py::array& w, const py::object& bias, py::array& y, const ConvOptions& o,
             const std::string& activation, double negative_slope) {
  const ConvGeometry g = conv_geometry(x, w, y, o);
  const T* bias_data = optional_bias<T>(bias, g.out_channels);
  const Activation act = parse_activation(activation);
  require_writeable(y, "y");
  py::gil_scoped_release release;
  conv_forward<T>(g, in<T>(x), in<T>(w), bias_data, out<T>(y), act, static_cast<T>(negative_slope));
}

template <class T>
void backward_data(const py::array& dy, const py::array& w, py::array& dx, const ConvOptions& o) {
  const ConvGeometry g = conv_geometry(dx, w, dy, o);
  require_writeable(dx, "dx");
  py::gil_scoped_release release;
  conv_backward_data<T>(g, in<T>(dy), in<T>(w), out<T>(dx));
}

template <class T>
void backward_weights(const py::array& dy, const py::array& x, py::array& dw, const py::object& db,
                      const ConvOptions& o) {
  const ConvGeometry g = conv_geometry(x, dw, dy, o);
  T* db_data = optional_output_vector<T>(db, g.out_channels, "db");
  require_writeable(dw, "dw");
  py::gil_scoped_release release;
  conv_backward_weights<T>(g, in<T>(dy), in<T>(x), out<T>(dw), db_data);
}

}  // namespace

void bind_conv(py::module_& m) {
  auto options = [](Triple stride, Triple dilation, Triple pad_before, std::int64_t groups, std::string mode) {
    return ConvOptions{stride, dilation, pad_before, groups, std::move(mode)};
  };
  m.def(
      "conv_forward",
      [=](const py::array& x, const py::array& w, const py::object& bias, py::array y, Triple stride, Triple dilation,
          Triple pad_before, std::int64_t groups, const std::string& padding_mode, const std::string& activation,
          double negative_slope) {
        const ConvOptions o = options(stride, dilation, pad_before, groups, padding_mode);
        by_dtype(x, "conv", [&] { forward<float>(x, w, bias, y, o, activation, negative_slope); },
                 [&] { forward<double>(x, w, bias, y, o, activation, negative_slope); });
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("y"), py::arg("stride"), py::arg("dilation"),
      py::arg("pad_before"), py::arg("groups"), py::arg("padding_mode"), py::arg("activation"),
      py::arg("negative_slope"),
      "y = act(conv(x, w) + bias) on 5-D channels-last arrays (N, D, H, W, C). Use convkit.ops.conv.");
  m.def(
      "conv_backward_data",
      [=](const py::array& dy, const py::array& w, py::array dx, Triple stride, Triple dilation, Triple pad_before,
          std::int64_t groups, const std::string& padding_mode) {
        const ConvOptions o = options(stride, dilation, pad_before, groups, padding_mode);
        by_dtype(dy, "conv", [&] { backward_data<float>(dy, w, dx, o); }, [&] { backward_data<double>(dy, w, dx, o); });
      },
      py::arg("dy"), py::arg("w"), py::arg("dx"), py::arg("stride"), py::arg("dilation"), py::arg("pad_before"),
      py::arg("groups"), py::arg("padding_mode"),
      "dx = gradient of the conv with respect to its input, written into dx (5-D). Use convkit.ops.conv_backward.");
  m.def(
      "conv_backward_weights",
      [=](const py::array& dy, const py::array& x, py::array dw, const py::object& db, Triple stride, Triple dilation,
          Triple pad_before, std::int64_t groups, const std::string& padding_mode) {
        const ConvOptions o = options(stride, dilation, pad_before, groups, padding_mode);
        by_dtype(dy, "conv", [&] { backward_weights<float>(dy, x, dw, db, o); },
                 [&] { backward_weights<double>(dy, x, dw, db, o); });
      },
      py::arg("dy"), py::arg("x"), py::arg("dw"), py::arg("db"), py::arg("stride"), py::arg("dilation"),
      py::arg("pad_before"), py::arg("groups"), py::arg("padding_mode"),
      "dw (and db unless None) = gradients of the conv with respect to its weights and bias. Use "
      "convkit.ops.conv_backward.");
}

}  // namespace convkit::bindings
