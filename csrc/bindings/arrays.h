// NumPy array -> strided view conversions for the bindings. The Python layer has already coerced dtypes
// and checked shapes with friendly messages; these checks are the last line that keeps a direct caller of
// convkit._C from reaching a kernel with a bad pointer or stride.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "ops/gemm.h"

namespace convkit::bindings {

namespace py = pybind11;

template <class T>
void require_dtype(const py::array& arr, const char* name) {
  if (!arr.dtype().equal(py::dtype::of<T>())) {
    throw py::type_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                         ", got " + std::string(py::str(arr.dtype())));
  }
}

inline std::int64_t element_stride(const py::array& arr, int axis, const char* name) {
  const auto bytes = static_cast<std::int64_t>(arr.strides(axis));
  const auto item = static_cast<std::int64_t>(arr.itemsize());
  if (bytes % item != 0) {
    throw py::value_error(std::string(name) + " has a stride of " + std::to_string(bytes) +
                          " bytes, not a multiple of its item size; pass a copy");
  }
  return bytes / item;
}

inline Activation parse_activation(const std::string& name) {
  if (name == "none") return Activation::none;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  throw py::value_error("activation must be 'none', 'relu' or 'leaky_relu', got '" + name + "'");
}

inline void require_c_contiguous(const py::array& arr, const char* name, int ndim) {
  if (arr.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got ndim=" +
                          std::to_string(arr.ndim()));
  }
  if (!(arr.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
}

// An optional vector argument (a bias, or a bias gradient to write): None (returns false), or a contiguous
// 1-D array of `length` values (returns true). Anything else throws.
template <class T>
bool is_vector_given(const py::object& vector, std::int64_t length, const char* name) {
  if (vector.is_none()) return false;
  if (!py::isinstance<py::array>(vector)) throw py::type_error(std::string(name) + " must be a numpy array or None");
  const auto arr = py::reinterpret_borrow<py::array>(vector);
  require_dtype<T>(arr, name);
  if (arr.ndim() != 1 || arr.shape(0) != length || (length > 1 && element_stride(arr, 0, name) != 1)) {
    throw py::value_error(std::string(name) + " must be a contiguous 1-D array of length " + std::to_string(length));
  }
  return true;
}

// The pointers stay valid while the caller holds the argument (alive for the whole kernel call).
template <class T>
const T* optional_bias(const py::object& bias, std::int64_t length) {
  if (!is_vector_given<T>(bias, length, "bias")) return nullptr;
  return static_cast<const T*>(py::reinterpret_borrow<py::array>(bias).data());
}

template <class T>
T* optional_output_vector(const py::object& vector, std::int64_t length, const char* name) {
  if (!is_vector_given<T>(vector, length, name)) return nullptr;
  auto arr = py::reinterpret_borrow<py::array>(vector);
  if (!arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
  return static_cast<T*>(arr.mutable_data());
}

inline void require_writeable(const py::array& arr, const char* name) {
  if (!arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
}

template <class T>
const T* in(const py::array& arr) { return static_cast<const T*>(arr.data()); }
template <class T>
T* out(py::array& arr) { return static_cast<T*>(arr.mutable_data()); }

// Runs f32() or f64() by the dtype of `probe` (the caller then checks that its other arrays match); `op`
// names the operation in the error.
template <class Float, class Double>
void by_dtype(const py::array& probe, const char* op, Float&& f32, Double&& f64) {
  if (probe.dtype().equal(py::dtype::of<float>())) {
    f32();
  } else if (probe.dtype().equal(py::dtype::of<double>())) {
    f64();
  } else {
    throw py::type_error(std::string(op) + " arrays must be float32 or float64, got " +
                         std::string(py::str(probe.dtype())));
  }
}

template <class T>
MatrixRef<const T> const_matrix(const py::array& arr, const char* name) {
  require_dtype<T>(arr, name);
  if (arr.ndim() != 2) throw py::value_error(std::string(name) + " must be 2-D, got ndim=" + std::to_string(arr.ndim()));
  return {static_cast<const T*>(arr.data()), arr.shape(0), arr.shape(1), element_stride(arr, 0, name),
          element_stride(arr, 1, name)};
}

template <class T>
MatrixRef<T> output_matrix(py::array& arr, const char* name) {
  MatrixRef<const T> view = const_matrix<T>(arr, name);
  if (!arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
  const bool empty = view.rows == 0 || view.cols == 0;
  if (!empty && view.cols > 1 && view.col_stride != 1) {
    throw py::value_error(std::string(name) + " must have contiguous rows (unit column stride)");
  }
  if (!empty && view.rows > 1 && std::abs(view.row_stride) < view.cols) {
    throw py::value_error(std::string(name) + " has overlapping rows (row stride " +
                          std::to_string(view.row_stride) + " elements for " + std::to_string(view.cols) +
                          " columns)");
  }
  return {static_cast<T*>(arr.mutable_data()), view.rows, view.cols, view.row_stride, 1};
}

}  // namespace convkit::bindings
