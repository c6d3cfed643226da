// Bindings of the loss drivers (ops/loss.h). Arrays arrive C-contiguous as the drivers' views: the input and
// its gradient (R, K) in one float dtype, labels (R,) int64, class weights and pos_weight (K,) float64, and
// dloss / losses 1-D in the input's dtype (R values for the class losses, R * K for BCE and MSE).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "ops/loss.h"

namespace convkit::bindings {
namespace {

Reduction parse_reduction(const std::string& name) {
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  if (name == "none") return Reduction::none;
  throw py::value_error("reduction must be 'mean', 'sum' or 'none', got '" + name + "'");
}

// The (R, K) shape of the loss input, which `other` (targets, or the gradient) must share.
LossShape loss_shape(const py::array& input, const py::array& other, const char* other_name) {
  require_c_contiguous(input, "input", 2);
  require_c_contiguous(other, other_name, 2);
  if (other.shape(0) != input.shape(0) || other.shape(1) != input.shape(1)) {
    throw py::value_error(std::string(other_name) + " must have the input's shape");
  }
  return {input.shape(0), input.shape(1)};
}

template <class T>
const T* data_of(const py::array& arr, const char* name) {
  require_dtype<T>(arr, name);
  return in<T>(arr);
}

// dloss (read) and losses (written): None or contiguous 1-D arrays of `count` values; grad (R, K), written.
template <class T>
LossOutputs<T> loss_outputs(const py::object& dloss, const py::object& losses, py::array& grad, std::int64_t count) {
  const T* dloss_data = is_vector_given<T>(dloss, count, "dloss") ? in<T>(py::reinterpret_borrow<py::array>(dloss))
                                                                   : nullptr;
  require_dtype<T>(grad, "grad");
  require_writeable(grad, "grad");
  return {dloss_data, optional_output_vector<T>(losses, count, "losses"), out<T>(grad)};
}

ClassLabels class_labels(const py::array& labels, const LossShape& s, std::int64_t ignore_index) {
  require_dtype<std::int64_t>(labels, "labels");
  require_c_contiguous(labels, "labels", 1);
  if (labels.shape(0) != s.rows) throw py::value_error("labels must have one value per row of the input");
  return {in<std::int64_t>(labels), ignore_index};
}

const double* optional_weights(const py::object& weights, std::int64_t classes, const char* name) {
  if (!is_vector_given<double>(weights, classes, name)) return nullptr;
  return in<double>(py::reinterpret_borrow<py::array>(weights));
}

// Returns f(T()) for T the input's dtype, float or double.
template <class F>
double by_input_dtype(const py::array& input, const char* op, F&& f) {
  double value = 0.0;
  by_dtype(input, op, [&] { value = f(0.0f); }, [&] { value = f(0.0); });
  return value;
}

// Each loss: arguments checked and pointers taken with the GIL held, the driver run without it.

template <class T>
double cross_entropy_with_labels(const py::array& logits, const py::array& labels, std::int64_t ignore_index,
                                 const py::object& weight, double label_smoothing, Reduction r,
                                 const py::object& dloss, const py::object& losses, py::array& grad) {
  const LossShape s = loss_shape(logits, grad, "grad");
  const T* z = data_of<T>(logits, "logits");
  const ClassLabels l = class_labels(labels, s, ignore_index);
  const double* w = optional_weights(weight, s.classes, "weight");
  const LossOutputs<T> o = loss_outputs<T>(dloss, losses, grad, s.rows);
  py::gil_scoped_release release;
  return softmax_cross_entropy_labels<T>(s, z, l, w, label_smoothing, r, o);
}

template <class T>
double cross_entropy_with_probabilities(const py::array& logits, const py::array& targets, const py::object& weight,
                                        double label_smoothing, Reduction r, const py::object& dloss,
                                        const py::object& losses, py::array& grad) {
  const LossShape s = loss_shape(logits, grad, "grad");
  loss_shape(logits, targets, "targets");
  const T* z = data_of<T>(logits, "logits");
  const T* t = data_of<T>(targets, "targets");
  const double* w = optional_weights(weight, s.classes, "weight");
  const LossOutputs<T> o = loss_outputs<T>(dloss, losses, grad, s.rows);
  py::gil_scoped_release release;
  return softmax_cross_entropy_probabilities<T>(s, z, t, w, label_smoothing, r, o);
}

template <class T>
double negative_log_likelihood(const py::array& log_probs, const py::array& labels, std::int64_t ignore_index,
                               const py::object& weight, Reduction r, const py::object& dloss,
                               const py::object& losses, py::array& grad) {
  const LossShape s = loss_shape(log_probs, grad, "grad");
  const T* x = data_of<T>(log_probs, "log_probs");
  const ClassLabels l = class_labels(labels, s, ignore_index);
  const double* w = optional_weights(weight, s.classes, "weight");
  const LossOutputs<T> o = loss_outputs<T>(dloss, losses, grad, s.rows);
  py::gil_scoped_release release;
  return nll_loss<T>(s, x, l, w, r, o);
}

template <class T>
double binary_cross_entropy(const py::array& logits, const py::array& targets, const py::object& pos_weight,
                            Reduction r, const py::object& dloss, const py::object& losses, py::array& grad) {
  const LossShape s = loss_shape(logits, grad, "grad");
  loss_shape(logits, targets, "targets");
  const T* z = data_of<T>(logits, "logits");
  const T* t = data_of<T>(targets, "targets");
  const double* pw = optional_weights(pos_weight, s.classes, "pos_weight");
  const LossOutputs<T> o = loss_outputs<T>(dloss, losses, grad, s.rows * s.classes);
  py::gil_scoped_release release;
  return binary_cross_entropy_with_logits<T>(s, z, t, pw, r, o);
}

template <class T>
double squared_error(const py::array& predictions, const py::array& targets, Reduction r, const py::object& dloss,
                     const py::object& losses, py::array& grad) {
  const LossShape s = loss_shape(predictions, grad, "grad");
  loss_shape(predictions, targets, "targets");
  const T* x = data_of<T>(predictions, "predictions");
  const T* t = data_of<T>(targets, "targets");
  const LossOutputs<T> o = loss_outputs<T>(dloss, losses, grad, s.rows * s.classes);
  py::gil_scoped_release release;
  return mse_loss<T>(s, x, t, r, o);
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def(
      "softmax_cross_entropy_labels",
      [](const py::array& logits, const py::array& labels, std::int64_t ignore_index, const py::object& weight,
         double label_smoothing, const std::string& reduction, const py::object& dloss, const py::object& losses,
         py::array grad) {
        const Reduction r = parse_reduction(reduction);
        return by_input_dtype(logits, "softmax_cross_entropy", [&](auto zero) {
          return cross_entropy_with_labels<decltype(zero)>(logits, labels, ignore_index, weight, label_smoothing, r,
                                                           dloss, losses, grad);
        });
      },
      py::arg("logits"), py::arg("labels"), py::arg("ignore_index"), py::arg("weight"), py::arg("label_smoothing"),
      py::arg("reduction"), py::arg("dloss"), py::arg("losses"), py::arg("grad"),
      "Softmax cross-entropy of logits (R, K) at int64 labels (R,): writes grad (and losses for 'none'), "
      "returns the reduced loss. Use convkit.ops.softmax_cross_entropy.");
  m.def(
      "softmax_cross_entropy_probabilities",
      [](const py::array& logits, const py::array& targets, const py::object& weight, double label_smoothing,
         const std::string& reduction, const py::object& dloss, const py::object& losses, py::array grad) {
        const Reduction r = parse_reduction(reduction);
        return by_input_dtype(logits, "softmax_cross_entropy", [&](auto zero) {
          return cross_entropy_with_probabilities<decltype(zero)>(logits, targets, weight, label_smoothing, r, dloss,
                                                                  losses, grad);
        });
      },
      py::arg("logits"), py::arg("targets"), py::arg("weight"), py::arg("label_smoothing"), py::arg("reduction"),
      py::arg("dloss"), py::arg("losses"), py::arg("grad"),
      "Softmax cross-entropy of logits (R, K) with target probabilities (R, K). Use "
      "convkit.ops.softmax_cross_entropy.");
  m.def(
      "nll_loss",
      [](const py::array& log_probs, const py::array& labels, std::int64_t ignore_index, const py::object& weight,
         const std::string& reduction, const py::object& dloss, const py::object& losses, py::array grad) {
        const Reduction r = parse_reduction(reduction);
        return by_input_dtype(log_probs, "nll_loss", [&](auto zero) {
          return negative_log_likelihood<decltype(zero)>(log_probs, labels, ignore_index, weight, r, dloss, losses,
                                                         grad);
        });
      },
      py::arg("log_probs"), py::arg("labels"), py::arg("ignore_index"), py::arg("weight"), py::arg("reduction"),
      py::arg("dloss"), py::arg("losses"), py::arg("grad"),
      "Negative log-likelihood of log-probabilities (R, K) at int64 labels (R,). Use convkit.ops.nll_loss.");
  m.def(
      "binary_cross_entropy_with_logits",
      [](const py::array& logits, const py::array& targets, const py::object& pos_weight,
         const std::string& reduction, const py::object& dloss, const py::object& losses, py::array grad) {
        const Reduction r = parse_reduction(reduction);
        return by_input_dtype(logits, "binary_cross_entropy_with_logits", [&](auto zero) {
          return binary_cross_entropy<decltype(zero)>(logits, targets, pos_weight, r, dloss, losses, grad);
        });
      },
      py::arg("logits"), py::arg("targets"), py::arg("pos_weight"), py::arg("reduction"), py::arg("dloss"),
      py::arg("losses"), py::arg("grad"),
      "Binary cross-entropy of logits (R, K) with targets (R, K), pos_weight per column. Use "
      "convkit.ops.binary_cross_entropy_with_logits.");
  m.def(
      "mse_loss",
      [](const py::array& predictions, const py::array& targets, const std::string& reduction,
         const py::object& dloss, const py::object& losses, py::array grad) {
        const Reduction r = parse_reduction(reduction);
        return by_input_dtype(predictions, "mse_loss", [&](auto zero) {
          return squared_error<decltype(zero)>(predictions, targets, r, dloss, losses, grad);
        });
      },
      py::arg("predictions"), py::arg("targets"), py::arg("reduction"), py::arg("dloss"), py::arg("losses"),
      py::arg("grad"), "Mean squared error of predictions (R, K) against targets (R, K). Use convkit.ops.mse_loss.");
}

}  // namespace convkit::bindings
