// Bindings of the normalization drivers (ops/norm.h, ops/short_rows_norm.h, ops/lrn.h). Arrays arrive
// C-contiguous as the drivers' views: 4-D (N, P, G, Cg) for normalization by statistics, whose statistics are
// float64 (N, G) arrays whatever the data's dtype (the short-row driver takes (R, 1, 1, K) and (R, 1)), and
// 2-D (R, C) for local response normalization.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <type_traits>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/lrn.h"
#include "ops/norm.h"
#include "ops/short_rows_norm.h"

namespace convkit::bindings {
namespace {

// The layout of a 4-D data array, checked against the others given with it.
NormLayout norm_layout(const py::array& x, const char* name) {
  require_c_contiguous(x, name, 4);
  return {x.shape(0), x.shape(1), x.shape(2), x.shape(3)};
}

void require_same_shape(const py::array& a, const py::array& b, const char* name) {
  require_c_contiguous(b, name, a.ndim());
  for (int axis = 0; axis < a.ndim(); ++axis) {
    if (a.shape(axis) != b.shape(axis)) throw py::value_error(std::string(name) + " must have x's shape");
  }
}

// A C-contiguous float64 (N, G) statistics array; returns its data.
template <class Pointer>
Pointer statistics_data(py::array& stats, const NormLayout& l, const char* name) {
  require_dtype<double>(stats, name);
  require_c_contiguous(stats, name, 2);
  if (stats.shape(0) != l.samples || stats.shape(1) != l.groups) {
    throw py::value_error(std::string(name) + " must have shape (N, G) = (" + std::to_string(l.samples) + ", " +
                          std::to_string(l.groups) + ")");
  }
  if constexpr (std::is_const_v<std::remove_pointer_t<Pointer>>) {
    return static_cast<Pointer>(stats.data());
  } else {
    if (!stats.writeable()) throw py::value_error(std::string(name) + " is read-only");
    return static_cast<Pointer>(stats.mutable_data());
  }
}

template <class T>
T* writeable_data(py::array& arr, const char* name) {
  require_dtype<T>(arr, name);
  if (!arr.writeable()) throw py::value_error(std::string(name) + " is read-only");
  return static_cast<T*>(arr.mutable_data());
}

template <class T>
const T* data_of(const py::array& arr, const char* name) {
  require_dtype<T>(arr, name);
  return static_cast<const T*>(arr.data());
}

template <class T>
const T* optional_vector(const py::object& vector, std::int64_t length, const char* name) {
  if (!is_vector_given<T>(vector, length, name)) return nullptr;
  return static_cast<const T*>(py::reinterpret_borrow<py::array>(vector).data());
}

template <class T>
void statistics(const py::array& x, py::array& mean, py::array& var) {
  const NormLayout l = norm_layout(x, "x");
  const T* xd = data_of<T>(x, "x");
  double* md = statistics_data<double*>(mean, l, "mean");
  double* vd = statistics_data<double*>(var, l, "var");
  py::gil_scoped_release release;
  norm_statistics<T>(l, xd, md, vd);
}

template <class T>
void forward(const py::array& x, py::array& mean, py::array& inv_std, const py::object& gamma,
             const py::object& beta, py::array& y) {
  const NormLayout l = norm_layout(x, "x");
  require_same_shape(x, y, "y");
  const T* xd = data_of<T>(x, "x");
  const double* md = statistics_data<const double*>(mean, l, "mean");
  const double* sd = statistics_data<const double*>(inv_std, l, "inv_std");
  const T* gd = optional_vector<T>(gamma, l.channels(), "gamma");
  const T* bd = optional_vector<T>(beta, l.channels(), "beta");
  T* yd = writeable_data<T>(y, "y");
  py::gil_scoped_release release;
  norm_forward<T>(l, xd, md, sd, gd, bd, yd);
}

template <class T>
void normalize(const py::array& x, double eps, const py::object& gamma, const py::object& beta, py::array& y,
               py::array& mean, py::array& var, py::array& inv_std) {
  const NormLayout l = norm_layout(x, "x");
  require_same_shape(x, y, "y");
  const T* xd = data_of<T>(x, "x");
  const T* gd = optional_vector<T>(gamma, l.channels(), "gamma");
  const T* bd = optional_vector<T>(beta, l.channels(), "beta");
  T* yd = writeable_data<T>(y, "y");
  double* md = statistics_data<double*>(mean, l, "mean");
  double* vd = statistics_data<double*>(var, l, "var");
  double* sd = statistics_data<double*>(inv_std, l, "inv_std");
  py::gil_scoped_release release;
  norm_normalize<T>(l, xd, eps, gd, bd, yd, md, vd, sd);
}

template <class T>
void backward(const py::array& dy, const py::array& x, py::array& mean, py::array& inv_std,
              const py::object& gamma, bool batch_statistics, py::array& dx, const py::object& dgamma,
              const py::object& dbeta) {
  const NormLayout l = norm_layout(x, "x");
  require_same_shape(x, dy, "dy");
  require_same_shape(x, dx, "dx");
  const T* dyd = data_of<T>(dy, "dy");
  const T* xd = data_of<T>(x, "x");
  const double* md = statistics_data<const double*>(mean, l, "mean");
  const double* sd = statistics_data<const double*>(inv_std, l, "inv_std");
  const T* gd = optional_vector<T>(gamma, l.channels(), "gamma");
  T* dxd = writeable_data<T>(dx, "dx");
  T* dgd = optional_output_vector<T>(dgamma, l.channels(), "dgamma");
  T* dbd = optional_output_vector<T>(dbeta, l.channels(), "dbeta");
  py::gil_scoped_release release;
  norm_backward<T>(l, dyd, xd, md, sd, gd, batch_statistics, dxd, dgd, dbd);
}

// The layout of x for the short-row driver: (R, 1, 1, K), each row its own group.
NormLayout short_rows_layout(const py::array& x) {
  const NormLayout l = norm_layout(x, "x");
  if (l.pixels != 1 || l.groups != 1) throw py::value_error("short-row normalization takes x as (R, 1, 1, K)");
  return l;
}

template <class T>
void short_rows_forward(const py::array& x, double eps, const py::object& gamma, const py::object& beta, py::array& y,
                        py::array& mean, py::array& inv_std) {
  const NormLayout l = short_rows_layout(x);
  require_same_shape(x, y, "y");
  const T* xd = data_of<T>(x, "x");
  const T* gd = optional_vector<T>(gamma, l.group_channels, "gamma");
  const T* bd = optional_vector<T>(beta, l.group_channels, "beta");
  T* yd = writeable_data<T>(y, "y");
  double* md = statistics_data<double*>(mean, l, "mean");
  double* sd = statistics_data<double*>(inv_std, l, "inv_std");
  py::gil_scoped_release release;
  short_rows_norm_forward<T>(l.samples, l.group_channels, xd, eps, gd, bd, yd, md, sd);
}

template <class T>
void short_rows_backward(const py::array& dy, const py::array& x, py::array& mean, py::array& inv_std,
                         const py::object& gamma, py::array& dx, const py::object& dgamma, const py::object& dbeta) {
  const NormLayout l = short_rows_layout(x);
  require_same_shape(x, dy, "dy");
  require_same_shape(x, dx, "dx");
  const T* dyd = data_of<T>(dy, "dy");
  const T* xd = data_of<T>(x, "x");
  const double* md = statistics_data<const double*>(mean, l, "mean");
  const double* sd = statistics_data<const double*>(inv_std, l, "inv_std");
  const T* gd = optional_vector<T>(gamma, l.group_channels, "gamma");
  T* dxd = writeable_data<T>(dx, "dx");
  T* dgd = optional_output_vector<T>(dgamma, l.group_channels, "dgamma");
  T* dbd = optional_output_vector<T>(dbeta, l.group_channels, "dbeta");
  py::gil_scoped_release release;
  short_rows_norm_backward<T>(l.samples, l.group_channels, dyd, xd, md, sd, gd, dxd, dgd, dbd);
}

template <class T>
void lrn(const py::array& x, py::array& y, const LrnOptions& o) {
  require_c_contiguous(x, "x", 2);
  require_same_shape(x, y, "y");
  const T* xd = data_of<T>(x, "x");
  T* yd = writeable_data<T>(y, "y");
  py::gil_scoped_release release;
  lrn_forward<T>(x.shape(0), x.shape(1), o, xd, yd);
}

template <class T>
void lrn_gradient(const py::array& dy, const py::array& x, py::array& dx, const LrnOptions& o) {
  require_c_contiguous(x, "x", 2);
  require_same_shape(x, dy, "dy");
  require_same_shape(x, dx, "dx");
  const T* dyd = data_of<T>(dy, "dy");
  const T* xd = data_of<T>(x, "x");
  T* dxd = writeable_data<T>(dx, "dx");
  py::gil_scoped_release release;
  lrn_backward<T>(x.shape(0), x.shape(1), o, dyd, xd, dxd);
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def(
      "norm_statistics",
      [](const py::array& x, py::array mean, py::array var) {
        by_dtype(x, "normalization", [&] { statistics<float>(x, mean, var); },
                 [&] { statistics<double>(x, mean, var); });
      },
      py::arg("x"), py::arg("mean"), py::arg("var"),
      "mean and biased var (float64, (N, G), written) of x viewed as (N, P, G, Cg), per (n, g).");
  m.def(
      "norm_forward",
      [](const py::array& x, py::array mean, py::array inv_std, const py::object& gamma, const py::object& beta,
         py::array y) {
        by_dtype(x, "normalization", [&] { forward<float>(x, mean, inv_std, gamma, beta, y); },
                 [&] { forward<double>(x, mean, inv_std, gamma, beta, y); });
      },
      py::arg("x"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"), py::arg("beta"), py::arg("y"),
      "y = (x - mean) * inv_std * gamma + beta on (N, P, G, Cg). Use convkit.ops.");
  m.def(
      "norm_normalize",
      [](const py::array& x, double eps, const py::object& gamma, const py::object& beta, py::array y,
         py::array mean, py::array var, py::array inv_std) {
        by_dtype(x, "normalization", [&] { normalize<float>(x, eps, gamma, beta, y, mean, var, inv_std); },
                 [&] { normalize<double>(x, eps, gamma, beta, y, mean, var, inv_std); });
      },
      py::arg("x"), py::arg("eps"), py::arg("gamma"), py::arg("beta"), py::arg("y"), py::arg("mean"), py::arg("var"),
      py::arg("inv_std"),
      "norm_statistics, inv_std = 1 / sqrt(var + eps) and norm_forward in one call (all written). Use convkit.ops.");
  m.def(
      "norm_backward",
      [](const py::array& dy, const py::array& x, py::array mean, py::array inv_std, const py::object& gamma,
         bool batch_statistics, py::array dx, const py::object& dgamma, const py::object& dbeta) {
        by_dtype(
            x, "normalization",
            [&] { backward<float>(dy, x, mean, inv_std, gamma, batch_statistics, dx, dgamma, dbeta); },
            [&] { backward<double>(dy, x, mean, inv_std, gamma, batch_statistics, dx, dgamma, dbeta); });
      },
      py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"),
      py::arg("batch_statistics"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
      "dx, dgamma, dbeta (written unless None) of the normalization. Use convkit.ops.");
  m.def(
      "short_rows_norm_forward",
      [](const py::array& x, double eps, const py::object& gamma, const py::object& beta, py::array y,
         py::array mean, py::array inv_std) {
        by_dtype(x, "normalization", [&] { short_rows_forward<float>(x, eps, gamma, beta, y, mean, inv_std); },
                 [&] { short_rows_forward<double>(x, eps, gamma, beta, y, mean, inv_std); });
      },
      py::arg("x"), py::arg("eps"), py::arg("gamma"), py::arg("beta"), py::arg("y"), py::arg("mean"),
      py::arg("inv_std"),
      "y, mean and inv_std = 1 / sqrt(var + eps) (written) of x (R, 1, 1, K), each row normalised by its own "
      "statistics. Use convkit.ops.layer_norm.");
  m.def(
      "short_rows_norm_backward",
      [](const py::array& dy, const py::array& x, py::array mean, py::array inv_std, const py::object& gamma,
         py::array dx, const py::object& dgamma, const py::object& dbeta) {
        by_dtype(x, "normalization", [&] { short_rows_backward<float>(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta); },
                 [&] { short_rows_backward<double>(dy, x, mean, inv_std, gamma, dx, dgamma, dbeta); });
      },
      py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"), py::arg("dx"),
      py::arg("dgamma"), py::arg("dbeta"),
      "dx, dgamma, dbeta (written unless None) of short_rows_norm_forward. Use convkit.ops.layer_norm_backward.");
  m.def(
      "lrn_forward",
      [](const py::array& x, py::array y, std::int64_t size, double alpha, double beta, double k) {
        const LrnOptions o{size, alpha, beta, k};
        by_dtype(x, "normalization", [&] { lrn<float>(x, y, o); }, [&] { lrn<double>(x, y, o); });
      },
      py::arg("x"), py::arg("y"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"),
      "y = local response normalization of x (R, C) across C. Use convkit.ops.local_response_norm.");
  m.def(
      "lrn_backward",
      [](const py::array& dy, const py::array& x, py::array dx, std::int64_t size, double alpha, double beta,
         double k) {
        const LrnOptions o{size, alpha, beta, k};
        by_dtype(x, "normalization", [&] { lrn_gradient<float>(dy, x, dx, o); },
                 [&] { lrn_gradient<double>(dy, x, dx, o); });
      },
      py::arg("dy"), py::arg("x"), py::arg("dx"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"),
      "dx of local response normalization, (R, C). Use convkit.ops.local_response_norm_backward.");
}

}  // namespace convkit::bindings
