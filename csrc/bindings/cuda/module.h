#pragma once
#include <pybind11/pybind11.h>

namespace convkit::bindings::cuda {
void bind_memory(pybind11::module_& m);
void bind_dlpack(pybind11::module_& m);
void bind_ops(pybind11::module_& m);
}  // namespace convkit::bindings::cuda
