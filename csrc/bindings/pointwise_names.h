// The pointwise activations by their Python names, shared by the CPU and CUDA bindings.
#pragma once
#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "ops/activation.h"

namespace convkit::bindings {

inline Pointwise parse_pointwise(const std::string& name) {
  static const std::pair<const char*, Pointwise> kNames[] = {
      {"linear", Pointwise::linear},       {"relu", Pointwise::relu},
      {"clipped_relu", Pointwise::clipped_relu},
      {"leaky_relu", Pointwise::leaky_relu}, {"elu", Pointwise::elu},
      {"sigmoid", Pointwise::sigmoid},     {"tanh", Pointwise::tanh},
      {"gelu", Pointwise::gelu},           {"gelu_tanh", Pointwise::gelu_tanh},
      {"hard_sigmoid", Pointwise::hard_sigmoid}, {"hard_swish", Pointwise::hard_swish}};
  for (const auto& [known, op] : kNames) {
    if (name == known) return op;
  }
  throw pybind11::value_error("unknown pointwise activation '" + name + "'");
}

}  // namespace convkit::bindings
