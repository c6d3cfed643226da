// Bindings of the fused optimizer updates (ops/optim.h). One call updates a whole parameter group of one
// dtype: the arrays come as equally long lists (parameter, gradient, state buffers), each C-contiguous and
// of the same size as its parameter.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/optim.h"

namespace convkit::bindings {
namespace {

using ArrayList = std::vector<py::array>;

// The data of list[i], checked to be a C-contiguous T array of `size` elements (writeable if asked).
template <class T>
T* element_data(const ArrayList& list, std::size_t i, std::int64_t size, const char* name, bool writeable) {
  const py::array& arr = list[i];
  const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
  require_dtype<T>(arr, label.c_str());
  if (!(arr.flags() & py::array::c_style)) throw py::value_error(label + " must be C-contiguous");
  if (static_cast<std::int64_t>(arr.size()) != size) {
    throw py::value_error(label + " has " + std::to_string(arr.size()) + " elements, its parameter " +
                          std::to_string(size));
  }
  if (writeable && !arr.writeable()) throw py::value_error(label + " is read-only");
  return static_cast<T*>(const_cast<void*>(arr.data()));
}

void require_lengths(std::size_t length, std::initializer_list<std::pair<const ArrayList*, const char*>> lists) {
  for (const auto& [list, name] : lists) {
    if (list->size() != length) {
      throw py::value_error(std::string(name) + " has " + std::to_string(list->size()) + " arrays for " +
                            std::to_string(length) + " parameters");
    }
  }
}

// The update loops declare a tensor's arrays __restrict: refuse arrays (of `size` elements) that overlap.
template <class T>
void require_disjoint(std::size_t i, std::int64_t size, std::initializer_list<const T*> arrays) {
  const auto bytes = static_cast<std::uintptr_t>(size) * sizeof(T);
  for (auto a = arrays.begin(); a != arrays.end(); ++a) {
    for (auto b = a + 1; b != arrays.end(); ++b) {
      const auto start_a = reinterpret_cast<std::uintptr_t>(*a), start_b = reinterpret_cast<std::uintptr_t>(*b);
      if (*a && *b && start_a < start_b + bytes && start_b < start_a + bytes) {
        throw py::value_error("the arrays of parameter " + std::to_string(i) + " overlap in memory");
      }
    }
  }
}

template <class T>
void sgd(const ArrayList& params, const ArrayList& grads, const ArrayList& velocities,
         const std::vector<bool>& first_step, const SgdOptions& options) {
  const bool momentum = options.momentum != 0.0;
  require_lengths(params.size(), {{&grads, "grads"}});
  if (momentum) require_lengths(params.size(), {{&velocities, "velocities"}});
  if (first_step.size() != params.size()) throw py::value_error("first_step must have one flag per parameter");
  std::vector<SgdTensor<T>> tensors;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto size = static_cast<std::int64_t>(params[i].size());
    T* velocity = momentum ? element_data<T>(velocities, i, size, "velocities", true) : nullptr;
    tensors.push_back({element_data<T>(params, i, size, "params", true),
                       element_data<T>(grads, i, size, "grads", false), velocity, size, bool(first_step[i])});
    require_disjoint<T>(i, size, {tensors.back().param, tensors.back().grad, velocity});
  }
  py::gil_scoped_release release;
  sgd_step<T>(tensors, options);
}

template <class T>
void adam(const ArrayList& params, const ArrayList& grads, const ArrayList& exp_avgs, const ArrayList& exp_avg_sqs,
          const std::vector<std::int64_t>& steps, const AdamOptions& options) {
  require_lengths(params.size(), {{&grads, "grads"}, {&exp_avgs, "exp_avgs"}, {&exp_avg_sqs, "exp_avg_sqs"}});
  if (steps.size() != params.size()) throw py::value_error("steps must have one count per parameter");
  std::vector<AdamTensor<T>> tensors;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto size = static_cast<std::int64_t>(params[i].size());
    tensors.push_back({element_data<T>(params, i, size, "params", true),
                       element_data<T>(grads, i, size, "grads", false),
                       element_data<T>(exp_avgs, i, size, "exp_avgs", true),
                       element_data<T>(exp_avg_sqs, i, size, "exp_avg_sqs", true), size, steps[i]});
    const AdamTensor<T>& t = tensors.back();
    require_disjoint<T>(i, size, {t.param, t.grad, t.exp_avg, t.exp_avg_sq});
  }
  py::gil_scoped_release release;
  adam_step<T>(tensors, options);
}

// The dtype of a group: its first parameter's (an empty group does nothing).
template <class Float, class Double>
void by_group_dtype(const ArrayList& params, Float&& f32, Double&& f64) {
  if (params.empty()) return;
  by_dtype(params[0], "optimizer", f32, f64);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def(
      "sgd_step",
      [](const ArrayList& params, const ArrayList& grads, const ArrayList& velocities,
         const std::vector<bool>& first_step, double lr, double momentum, double dampening, double weight_decay,
         bool nesterov) {
        const SgdOptions o{lr, momentum, dampening, weight_decay, nesterov};
        by_group_dtype(params, [&] { sgd<float>(params, grads, velocities, first_step, o); },
                       [&] { sgd<double>(params, grads, velocities, first_step, o); });
      },
      py::arg("params"), py::arg("grads"), py::arg("velocities"), py::arg("first_step"), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      "One SGD step over a group of same-dtype parameters, in place. Use convkit.optim.SGD.");
  m.def(
      "adam_step",
      [](const ArrayList& params, const ArrayList& grads, const ArrayList& exp_avgs, const ArrayList& exp_avg_sqs,
         const std::vector<std::int64_t>& steps, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool decoupled_weight_decay) {
        const AdamOptions o{lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay};
        by_group_dtype(params, [&] { adam<float>(params, grads, exp_avgs, exp_avg_sqs, steps, o); },
                       [&] { adam<double>(params, grads, exp_avgs, exp_avg_sqs, steps, o); });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("steps"),
      py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("decoupled_weight_decay"),
      "One Adam/AdamW step over a group of same-dtype parameters, in place. Use convkit.optim.Adam.");
}

}  // namespace convkit::bindings
