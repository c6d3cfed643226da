// The exponential kernel contract, on n doubles (`out` may be `in`), each result within 2 ulps of the
// exact value (the reference calls the C library):
//
//   exp    out[i] = exp(in[i]) for any in[i]: exp(+inf) = +inf, exp(-inf) = 0, results beyond the double
//          range are +inf or (gradually) 0
//   expm1  out[i] = exp(in[i]) - 1 for in[i] <= 0 (what the activations need): accurate near 0, where
//          exp(x) - 1 would cancel; expm1(-inf) = -1
//
// NaN stays NaN. Activations built on exp (sigmoid, tanh, elu, GELU's tanh form, softmax) compute their
// arguments in double, call this on a chunk, and finish in double, so float32 results keep a single
// rounding.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit {

struct ExpUkernel {
  const char* name;  // f64-exp-1xL-isa, L the doubles of its vector step
  Isa isa;
  void (*exp)(const double* in, double* out, std::int64_t n) noexcept;
  void (*expm1)(const double* in, double* out, std::int64_t n) noexcept;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const ExpUkernel f64_exp_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const ExpUkernel f64_exp_1x4_avx2;
#endif

}  // namespace convkit
