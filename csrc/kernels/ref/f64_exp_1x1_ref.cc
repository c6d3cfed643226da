#include <cmath>

#include "kernels/exp_ukernel.h"

namespace convkit {
namespace {

void exp_ref(const double* in, double* out, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
}

void expm1_ref(const double* in, double* out, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) out[i] = std::expm1(in[i]);
}

}  // namespace

const ExpUkernel f64_exp_1x1_ref = {"f64-exp-1x1-ref", Isa::ref, &exp_ref, &expm1_ref};

}  // namespace convkit
