// The device ops (ops/cuda/device_ops.h) on device addresses passed as ints. convkit/cuda/_ops.py checks
// every shape, dtype and device before calling, and allocates the outputs; `dtype` is "float32" or
// "float64" and names the type of every floating-point array of the call. The GIL is released around
// every launch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "bindings/cuda/module.h"
#include "bindings/pointwise_names.h"
#include "core/activation.h"
#include "ops/cuda/device_ops.h"

namespace convkit::bindings::cuda {
namespace py = pybind11;
namespace ops = convkit::cuda;
using std::int64_t;
using Axes = std::array<int64_t, 3>;

namespace {

template <class T = void>
T* at(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

// Runs f(T{}) for T = float or double by name.
template <class F>
void by_dtype(const std::string& dtype, F&& f) {
  if (dtype == "float32") {
    f(float{});
  } else if (dtype == "float64") {
    f(double{});
  } else {
    throw py::type_error("CUDA ops take float32 or float64, got " + dtype);
  }
}

Activation parse_activation(const std::string& name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  throw py::value_error("activation must be 'none', 'relu' or 'leaky_relu', got '" + name + "'");
}

ops::ConvGeometry conv_geometry(const py::dict& g) {
  ops::ConvGeometry c;
  c.batch = g["batch"].cast<int64_t>();
  c.in_channels = g["in_channels"].cast<int64_t>();
  c.out_channels = g["out_channels"].cast<int64_t>();
  c.groups = g["groups"].cast<int64_t>();
  c.in = g["in"].cast<Axes>();
  c.out = g["out"].cast<Axes>();
  c.kernel = g["kernel"].cast<Axes>();
  c.stride = g["stride"].cast<Axes>();
  c.dilation = g["dilation"].cast<Axes>();
  c.pad_before = g["pad_before"].cast<Axes>();
  return c;
}

ops::PoolGeometry pool_geometry(const py::dict& g) {
  ops::PoolGeometry p;
  p.batch = g["batch"].cast<int64_t>();
  p.channels = g["channels"].cast<int64_t>();
  p.in = g["in"].cast<Axes>();
  p.out = g["out"].cast<Axes>();
  p.step = g["step"].cast<Axes>();
  p.windows = at<const int64_t>(g["windows"].cast<std::uintptr_t>());
  return p;
}

void bind_gemm_and_conv(py::module_& m) {
  m.def("gemm", [](const std::string& dtype, std::uintptr_t a, bool transpose_a, std::uintptr_t b, bool transpose_b,
                   std::uintptr_t c, int64_t rows, int64_t cols, int64_t inner, double alpha, double beta,
                   std::uintptr_t bias, const std::string& activation, double negative_slope) {
    const Activation act = parse_activation(activation);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::gemm<T>(at<const T>(a), transpose_a, at<const T>(b), transpose_b, at<T>(c), rows, cols, inner, T(alpha),
                   T(beta), at<const T>(bias), act, T(negative_slope));
    });
  });
  m.def("conv_forward", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t x, std::uintptr_t w,
                           std::uintptr_t bias, std::uintptr_t y, const std::string& activation, double slope) {
    const ops::ConvGeometry g = conv_geometry(geometry);
    const Activation act = parse_activation(activation);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::conv_forward<T>(g, at<const T>(x), at<const T>(w), at<const T>(bias), at<T>(y), act, T(slope));
    });
  });
  m.def("conv_backward_data", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t dy,
                                 std::uintptr_t w, std::uintptr_t dx) {
    const ops::ConvGeometry g = conv_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::conv_backward_data<T>(g, at<const T>(dy), at<const T>(w), at<T>(dx));
    });
  });
  m.def("conv_backward_weights", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t dy,
                                    std::uintptr_t x, std::uintptr_t dw, std::uintptr_t db) {
    const ops::ConvGeometry g = conv_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::conv_backward_weights<T>(g, at<const T>(dy), at<const T>(x), at<T>(dw), at<T>(db));
    });
  });
  m.def("bias_gradient", [](const std::string& dtype, int64_t rows, int64_t channels, std::uintptr_t dy,
                            std::uintptr_t db) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::bias_gradient<T>(rows, channels, at<const T>(dy), at<T>(db));
    });
  }, py::call_guard<py::gil_scoped_release>());
}

void bind_pool(py::module_& m) {
  m.def("max_pool_forward", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t x,
                               std::uintptr_t y, std::uintptr_t indices) {
    const ops::PoolGeometry g = pool_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::max_pool_forward<T>(g, at<const T>(x), at<T>(y), at<int64_t>(indices));
    });
  });
  m.def("max_pool_backward", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t dy,
                                std::uintptr_t indices, std::uintptr_t dx) {
    const ops::PoolGeometry g = pool_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::max_pool_backward<T>(g, at<const T>(dy), at<const int64_t>(indices), at<T>(dx));
    });
  });
  m.def("avg_pool_forward", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t x,
                               std::uintptr_t y, bool count_include_pad) {
    const ops::PoolGeometry g = pool_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::avg_pool_forward<T>(g, at<const T>(x), at<T>(y), count_include_pad);
    });
  });
  m.def("avg_pool_backward", [](const std::string& dtype, const py::dict& geometry, std::uintptr_t dy,
                                std::uintptr_t dx, bool count_include_pad) {
    const ops::PoolGeometry g = pool_geometry(geometry);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::avg_pool_backward<T>(g, at<const T>(dy), at<T>(dx), count_include_pad);
    });
  });
}

void bind_norm(py::module_& m) {
  m.def("batch_norm_statistics", [](const std::string& dtype, int64_t rows, int64_t channels, std::uintptr_t x,
                                    double eps, std::uintptr_t mean, std::uintptr_t var, std::uintptr_t inv_std) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::batch_norm_statistics<T>(rows, channels, at<const T>(x), eps, at<double>(mean), at<double>(var),
                                    at<double>(inv_std));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_apply", [](const std::string& dtype, int64_t rows, int64_t channels, std::uintptr_t x,
                               std::uintptr_t mean, std::uintptr_t inv_std, std::uintptr_t gamma, std::uintptr_t beta,
                               std::uintptr_t y) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::batch_norm_apply<T>(rows, channels, at<const T>(x), at<const double>(mean), at<const double>(inv_std),
                               at<const T>(gamma), at<const T>(beta), at<T>(y));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_fixed_statistics", [](const std::string& dtype, int64_t channels, std::uintptr_t running_mean,
                                          std::uintptr_t running_var, double eps, std::uintptr_t mean,
                                          std::uintptr_t inv_std) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::batch_norm_fixed_statistics<T>(channels, at<const T>(running_mean), at<const T>(running_var), eps,
                                          at<double>(mean), at<double>(inv_std));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_running_update", [](const std::string& dtype, int64_t channels, double momentum, double factor,
                                       std::uintptr_t batch, std::uintptr_t running) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::batch_norm_running_update<T>(channels, momentum, factor, at<const double>(batch), at<T>(running));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_backward", [](const std::string& dtype, int64_t rows, int64_t channels, std::uintptr_t dy,
                                  std::uintptr_t x, std::uintptr_t mean, std::uintptr_t inv_std, std::uintptr_t gamma,
                                  bool batch_statistics, std::uintptr_t dx, std::uintptr_t dgamma,
                                  std::uintptr_t dbeta) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::batch_norm_backward<T>(rows, channels, at<const T>(dy), at<const T>(x), at<const double>(mean),
                                  at<const double>(inv_std), at<const T>(gamma), batch_statistics, at<T>(dx),
                                  at<T>(dgamma), at<T>(dbeta));
    });
  }, py::call_guard<py::gil_scoped_release>());
}

void bind_elementwise(py::module_& m) {
  m.def("pointwise_forward", [](const std::string& dtype, const std::string& name, double alpha, int64_t n,
                                std::uintptr_t x, std::uintptr_t y) {
    const Pointwise op = parse_pointwise(name);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::pointwise_forward<T>(op, alpha, n, at<const T>(x), at<T>(y));
    });
  });
  m.def("pointwise_backward", [](const std::string& dtype, const std::string& name, double alpha, int64_t n,
                                 std::uintptr_t dy, std::uintptr_t saved, std::uintptr_t dx) {
    const Pointwise op = parse_pointwise(name);
    py::gil_scoped_release release;
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::pointwise_backward<T>(op, alpha, n, at<const T>(dy), at<const T>(saved), at<T>(dx));
    });
  });
  m.def("dropout_forward", [](const std::string& dtype, int64_t outer, int64_t middle, int64_t inner,
                              std::uint64_t seed, std::uint64_t first_block, double rate, std::uintptr_t x,
                              std::uintptr_t y, std::uintptr_t mask) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::dropout_forward<T>(outer, middle, inner, seed, first_block, rate, at<const T>(x), at<T>(y),
                              at<std::uint8_t>(mask));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("dropout_backward", [](const std::string& dtype, int64_t outer, int64_t middle, int64_t inner,
                               std::uintptr_t mask, double rate, std::uintptr_t dy, std::uintptr_t dx) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::dropout_backward<T>(outer, middle, inner, at<const std::uint8_t>(mask), rate, at<const T>(dy), at<T>(dx));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("axpy", [](const std::string& dtype, int64_t n, double alpha, std::uintptr_t x, std::uintptr_t y) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::axpy<T>(n, alpha, at<const T>(x), at<T>(y));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("sgd_step", [](const std::string& dtype, int64_t n, std::uintptr_t param, std::uintptr_t grad,
                       std::uintptr_t velocity, bool first_step, double lr, double momentum, double dampening,
                       double weight_decay, bool nesterov) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::sgd_step<T>(n, at<T>(param), at<const T>(grad), at<T>(velocity), first_step, lr, momentum, dampening,
                       weight_decay, nesterov);
    });
  }, py::call_guard<py::gil_scoped_release>());
}

void bind_loss(py::module_& m) {
  m.def("softmax_cross_entropy_rows", [](const std::string& dtype, int64_t rows, int64_t classes,
                                         std::uintptr_t logits, std::uintptr_t labels, int64_t ignore_index,
                                         std::uintptr_t row_losses, std::uintptr_t row_counts) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::softmax_cross_entropy_rows<T>(rows, classes, at<const T>(logits), at<const int64_t>(labels), ignore_index,
                                         at<double>(row_losses), at<double>(row_counts));
    });
  }, py::call_guard<py::gil_scoped_release>());
  m.def("softmax_cross_entropy_grad", [](const std::string& dtype, int64_t rows, int64_t classes,
                                         std::uintptr_t logits, std::uintptr_t labels, int64_t ignore_index,
                                         double scale, std::uintptr_t dlogits) {
    by_dtype(dtype, [&](auto zero) {
      using T = decltype(zero);
      ops::softmax_cross_entropy_grad<T>(rows, classes, at<const T>(logits), at<const int64_t>(labels), ignore_index,
                                         scale, at<T>(dlogits));
    });
  }, py::call_guard<py::gil_scoped_release>());
}

}  // namespace

void bind_ops(py::module_& m) {
  bind_gemm_and_conv(m);
  bind_pool(m);
  bind_norm(m);
  bind_elementwise(m);
  bind_loss(m);
}

}  // namespace convkit::bindings::cuda
