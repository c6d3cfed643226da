// The exponential kernel contract: out[i] = exp(in[i]) for n doubles, within 2 ulps of the exact value
// (the reference calls the C library). exp(+inf) = +inf, exp(-inf) = 0, NaN stays NaN, results beyond the
// double range are +inf or (gradually) 0. `out` may be `in`. Activations that need exp (sigmoid, GELU's
// tanh form, softmax) compute their arguments in double, call this on a chunk, and finish in double, so
// float32 results keep a single rounding.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit {

struct ExpUkernel {
  const char* name;  // f64-exp-1xL-isa, L the doubles of its vector step
  Isa isa;
  void (*exp)(const double* in, double* out, std::int64_t n) noexcept;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const ExpUkernel f64_exp_1x1_ref;
#if CONVKIT_HAVE_AVX2
extern const ExpUkernel f64_exp_1x4_avx2;
#endif

}  // namespace convkit
