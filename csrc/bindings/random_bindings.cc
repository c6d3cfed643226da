// Bindings of the Philox stream drivers (ops/random_fill.h) and dropout (ops/dropout.h). A stream is passed
// as (seed, first_block): convkit.random's generators reserve the blocks a call uses before making it.
// Arrays arrive C-contiguous: fills write any shape; dropout data are 3-D (A, B, D) views and masks 2-D
// (A, D) bool arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "core/philox.h"
#include "ops/dropout.h"
#include "ops/random_fill.h"

namespace convkit::bindings {
namespace {

void require_contiguous_output(py::array& arr, const char* name) {
  if (!(arr.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
  require_writeable(arr, name);
}

template <class T>
void uniform(const philox::Stream& stream, py::array& values, double low, double high) {
  require_contiguous_output(values, "out");
  T* data = out<T>(values);
  py::gil_scoped_release release;
  fill_uniform<T>(stream, values.size(), low, high, data);
}

template <class T>
void normal(const philox::Stream& stream, py::array& values, double mean, double std) {
  require_contiguous_output(values, "out");
  T* data = out<T>(values);
  py::gil_scoped_release release;
  fill_normal<T>(stream, values.size(), mean, std, data);
}

MaskLayout mask_layout(const py::array& x, const py::array& mask) {
  require_c_contiguous(x, "x", 3);
  require_dtype<bool>(mask, "mask");
  require_c_contiguous(mask, "mask", 2);
  if (mask.shape(0) != x.shape(0) || mask.shape(1) != x.shape(2)) {
    throw py::value_error("mask must have shape (A, D) of x's (A, B, D) view");
  }
  return {x.shape(0), x.shape(1), x.shape(2)};
}

void require_same_shape(const py::array& a, const py::array& b, const char* name) {
  require_c_contiguous(b, name, a.ndim());
  if (!a.dtype().equal(b.dtype())) throw py::type_error(std::string(name) + " must have x's dtype");
  for (int axis = 0; axis < a.ndim(); ++axis) {
    if (a.shape(axis) != b.shape(axis)) throw py::value_error(std::string(name) + " must have x's shape");
  }
}

template <class T>
void forward(const philox::Stream& stream, double rate, const py::array& x, const py::object& base, py::array& y,
             py::array& mask) {
  const MaskLayout l = mask_layout(x, mask);
  require_same_shape(x, y, "y");
  require_writeable(y, "y");
  require_writeable(mask, "mask");
  const T* base_data = nullptr;
  if (!base.is_none()) {
    const auto base_array = py::reinterpret_borrow<py::array>(base);
    require_same_shape(x, base_array, "base");
    base_data = in<T>(base_array);
  }
  const T* xd = in<T>(x);
  T* yd = out<T>(y);
  auto* md = static_cast<std::uint8_t*>(mask.mutable_data());
  py::gil_scoped_release release;
  dropout_forward<T>(l, stream, rate, xd, base_data, yd, md);
}

template <class T>
void backward(const py::array& dy, const py::array& mask, double rate, py::array& dx) {
  const MaskLayout l = mask_layout(dy, mask);
  require_same_shape(dy, dx, "dx");
  require_writeable(dx, "dx");
  const T* dyd = in<T>(dy);
  const auto* md = static_cast<const std::uint8_t*>(mask.data());
  T* dxd = out<T>(dx);
  py::gil_scoped_release release;
  dropout_backward<T>(l, md, rate, dyd, dxd);
}

}  // namespace

void bind_random(py::module_& m) {
  m.def(
      "philox4x32_10",
      [](const philox::Block& counter, const philox::Key& key) { return philox::philox4x32_10(counter, key); },
      py::arg("counter"), py::arg("key"), "The Philox4x32-10 block of a counter (4 words) under a key (2 words).");
  m.def(
      "random_uniform",
      [](std::uint64_t seed, std::uint64_t first_block, py::array out, double low, double high) {
        const philox::Stream s{seed, first_block};
        by_dtype(out, "random_uniform", [&] { uniform<float>(s, out, low, high); },
                 [&] { uniform<double>(s, out, low, high); });
      },
      py::arg("seed"), py::arg("first_block"), py::arg("out"), py::arg("low"), py::arg("high"),
      "Fills out with uniforms in [low, high). Use convkit.random.uniform.");
  m.def(
      "random_normal",
      [](std::uint64_t seed, std::uint64_t first_block, py::array out, double mean, double std) {
        const philox::Stream s{seed, first_block};
        by_dtype(out, "random_normal", [&] { normal<float>(s, out, mean, std); },
                 [&] { normal<double>(s, out, mean, std); });
      },
      py::arg("seed"), py::arg("first_block"), py::arg("out"), py::arg("mean"), py::arg("std"),
      "Fills out with normal values (Box-Muller). Use convkit.random.normal.");
  m.def(
      "random_bernoulli",
      [](std::uint64_t seed, std::uint64_t first_block, py::array out, double p) {
        require_dtype<bool>(out, "out");
        require_contiguous_output(out, "out");
        auto* data = static_cast<std::uint8_t*>(out.mutable_data());
        py::gil_scoped_release release;
        fill_bernoulli({seed, first_block}, out.size(), p, data);
      },
      py::arg("seed"), py::arg("first_block"), py::arg("out"), py::arg("p"),
      "Fills the bool array out with True with probability p. Use convkit.random.bernoulli.");
  m.def(
      "random_bits",
      [](std::uint64_t seed, std::uint64_t first_block, py::array out) {
        require_dtype<std::uint64_t>(out, "out");
        require_contiguous_output(out, "out");
        auto* data = static_cast<std::uint64_t*>(out.mutable_data());
        py::gil_scoped_release release;
        fill_bits({seed, first_block}, out.size(), data);
      },
      py::arg("seed"), py::arg("first_block"), py::arg("out"), "Fills the uint64 array out with random bits.");
  m.def(
      "dropout_forward",
      [](std::uint64_t seed, std::uint64_t first_block, double rate, const py::array& x, const py::object& base,
         py::array y, py::array mask) {
        const philox::Stream s{seed, first_block};
        by_dtype(x, "dropout", [&] { forward<float>(s, rate, x, base, y, mask); },
                 [&] { forward<double>(s, rate, x, base, y, mask); });
      },
      py::arg("seed"), py::arg("first_block"), py::arg("rate"), py::arg("x"), py::arg("base"), py::arg("y"),
      py::arg("mask"), "Draws mask (A, D) and writes y = base + mask * x / (1 - rate) on (A, B, D). Use convkit.ops.");
  m.def(
      "dropout_backward",
      [](const py::array& dy, const py::array& mask, double rate, py::array dx) {
        by_dtype(dy, "dropout", [&] { backward<float>(dy, mask, rate, dx); },
                 [&] { backward<double>(dy, mask, rate, dx); });
      },
      py::arg("dy"), py::arg("mask"), py::arg("rate"), py::arg("dx"),
      "dx = mask * dy / (1 - rate) on (A, B, D). Use convkit.ops.");
}

}  // namespace convkit::bindings
