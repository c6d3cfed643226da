#include "bindings/module.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "convkit's compiled core. Use the convkit package; these entry points do little validation.";
  convkit::bindings::bind_runtime(m);
  convkit::bindings::bind_gemm(m);
  convkit::bindings::bind_conv(m);
  convkit::bindings::bind_norm(m);
  convkit::bindings::bind_pool(m);
  convkit::bindings::bind_loss(m);
  convkit::bindings::bind_random(m);
  convkit::bindings::bind_optim(m);
  convkit::bindings::bind_activation(m);
  convkit::bindings::bind_bench(m);
}
