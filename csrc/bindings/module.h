#pragma once
#include <pybind11/pybind11.h>

namespace convkit::bindings {
void bind_runtime(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_bench(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_norm(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_loss(pybind11::module_& m);
void bind_random(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
}  // namespace convkit::bindings
