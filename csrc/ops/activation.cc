// Elementwise activation and PReLU drivers (formulas in activation.h).
//
// The driver converts contiguous chunks of kChunk values to double, lets the op transform the chunk in
// place, and rounds the results once to T; each thread takes a contiguous share of the chunks. Most ops
// are a scalar formula applied value by value (Scalar<...> below): the cheap ones (relu, leaky_relu,
// linear, hard_*) inline into loops gcc vectorises, and exact GELU calls the C library's erfc. The ops
// built on exp (sigmoid, tanh, elu, GELU's tanh form) compute the chunk's arguments, call the selected exp
// kernel (kernels/exp_ukernel.h: AVX2 or the C library) on the whole chunk, then finish.
// Either way float32 results are the double result rounded once (within an ulp of the exact value).
#include "ops/activation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/checked_math.h"
#include "kernels/registry.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kChunk = 256;  // values per chunk: two double chunks stay in L1
constexpr double kMaxDouble = std::numeric_limits<double>::max();

// `cost`: roughly how many cheap elementwise operations one value costs, for deciding how many threads
// a pass deserves (a C library call is worth ~20 adds, a vectorised exp a few).
constexpr int kCheap = 1;
constexpr int kVectorExp = 4;
constexpr int kLibmCall = 20;

// An op given by scalar functions forward(x, alpha) and backward(dy, saved, alpha), applied value by value.
template <class F>
struct Scalar {
  static constexpr int cost = F::cost;
  static void forward(double* v, int64_t n, double alpha, const ExpUkernel&) {
    for (int64_t i = 0; i < n; ++i) v[i] = F::forward(v[i], alpha);
  }
  static void backward(double* g, const double* saved, int64_t n, double alpha, const ExpUkernel&) {
    for (int64_t i = 0; i < n; ++i) g[i] = F::backward(g[i], saved[i], alpha);
  }
};

struct LinearScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return x; }
  static double backward(double dy, double, double) { return dy; }
};

struct ReluScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return activate(x, Activation::relu, 0.0); }
  static double backward(double dy, double y, double) { return activate_gradient(dy, y, Activation::relu, 0.0); }
};

struct ClippedReluScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double cap) {
    const double r = x < 0.0 ? 0.0 : x;  // NaN passes through both selects
    return r > cap ? cap : r;
  }
  // Zero at both kinks (the flat sides' slope), as PyTorch's relu6; a NaN y gives NaN.
  static double backward(double dy, double y, double cap) { return y > 0.0 && y < cap ? dy : (y != y ? y : 0.0); }
};

struct LeakyReluScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double alpha) { return activate(x, Activation::leaky_relu, alpha); }
  static double backward(double dy, double y, double alpha) {
    return activate_gradient(dy, y, Activation::leaky_relu, alpha);
  }
};

struct Elu {
  static constexpr int cost = kVectorExp;
  static void forward(double* v, int64_t n, double alpha, const ExpUkernel& exp) {
    double e[kChunk] = {};  // (zeroed only to tell gcc that expm1 reads nothing unset)
    for (int64_t i = 0; i < n; ++i) e[i] = std::min(v[i], 0.0);  // NaN stays
    exp.expm1(e, e, n);
    // max(x, 0) + alpha * expm1(min(x, 0)): no branch (see core/activation.h), NaN and -0 kept.
    for (int64_t i = 0; i < n; ++i) v[i] = (v[i] < 0.0 ? 0.0 : v[i]) + alpha * e[i];
  }
  // For x <= 0, d/dx alpha * (e^x - 1) = alpha * e^x = y + alpha.
  static void backward(double* g, const double* y, int64_t n, double alpha, const ExpUkernel&) {
    for (int64_t i = 0; i < n; ++i) g[i] *= y[i] > 0.0 ? 1.0 : y[i] + alpha;  // NaN y gives y + alpha = NaN
  }
};

// tanh|x| = -t / (2 + t) with t = expm1(-2|x|) in (-1, 0]: no cancellation near 0, no overflow.
struct Tanh {
  static constexpr int cost = kVectorExp;
  static void forward(double* v, int64_t n, double, const ExpUkernel& exp) {
    double t[kChunk] = {};  // (zeroed only to tell gcc that expm1 reads nothing unset)
    for (int64_t i = 0; i < n; ++i) t[i] = -2.0 * std::abs(v[i]);
    exp.expm1(t, t, n);
    for (int64_t i = 0; i < n; ++i) v[i] = std::copysign(-t[i] / (2.0 + t[i]), v[i]);
  }
  static void backward(double* g, const double* y, int64_t n, double, const ExpUkernel&) {
    for (int64_t i = 0; i < n; ++i) g[i] *= 1.0 - y[i] * y[i];
  }
};

// Exact GELU. Phi(x) = erfc(-x / sqrt 2) / 2 keeps its relative accuracy for negative x, where
// 1 + erf(x / sqrt 2) would cancel. The zero tests give the limits at -inf (0) instead of -inf * 0.
struct GeluScalar {
  static constexpr int cost = 2 * kLibmCall;
  static double cdf(double x) { return 0.5 * std::erfc(-x * M_SQRT1_2); }
  static double forward(double x, double) {
    const double p = cdf(x);
    return p == 0.0 ? 0.0 : x * p;
  }
  static double backward(double dy, double x, double) {
    const double pdf = std::exp(-0.5 * x * x) * (0.5 * M_2_SQRTPI * M_SQRT1_2);
    return dy * (pdf == 0.0 ? cdf(x) : cdf(x) + x * pdf);
  }
};

// MobileNetV3's piecewise-linear sigmoid and swish.
double relu6_of_x_plus_3(double x) {
  const double r = x + 3.0;
  return r < 0.0 ? 0.0 : (r > 6.0 ? 6.0 : r);  // NaN passes through
}

struct HardSigmoidScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return relu6_of_x_plus_3(x) / 6.0; }
  static double backward(double dy, double x, double) {
    if (x != x) return x;
    return x > -3.0 && x < 3.0 ? dy / 6.0 : 0.0;
  }
};

struct HardSwishScalar {
  static constexpr int cost = kCheap;
  static double forward(double x, double) {
    // Below -3, r = 0: clamping x there gives the limit 0 at -inf instead of -inf * 0, without a branch.
    return (x < -3.0 ? -3.0 : x) * relu6_of_x_plus_3(x) / 6.0;
  }
  static double backward(double dy, double x, double) {
    if (x != x) return x;
    if (x < -3.0) return 0.0;
    return x <= 3.0 ? dy * (2.0 * x + 3.0) / 6.0 : dy;
  }
};

// sigmoid(t) from e = exp(-|t|), without overflow: 1 / (1 + e) for t >= 0, e / (1 + e) below (NaN too).
double sigmoid_from(double t, double e) { return (t >= 0.0 ? 1.0 : e) / (1.0 + e); }

struct Sigmoid {
  static constexpr int cost = kVectorExp;
  static void forward(double* v, int64_t n, double, const ExpUkernel& exp) {
    double e[kChunk] = {};  // (zeroed only to tell gcc that exp reads nothing unset)
    for (int64_t i = 0; i < n; ++i) e[i] = -std::abs(v[i]);
    exp.exp(e, e, n);
    for (int64_t i = 0; i < n; ++i) v[i] = sigmoid_from(v[i], e[i]);
  }
  static void backward(double* g, const double* y, int64_t n, double, const ExpUkernel&) {
    for (int64_t i = 0; i < n; ++i) g[i] *= y[i] * (1.0 - y[i]);
  }
};

// GELU's tanh approximation, written as x * sigmoid(2u) (= x / 2 * (1 + tanh u)) so that negative x does
// not cancel in 1 + tanh u.
struct GeluTanh {
  static constexpr int cost = kVectorExp;
  static constexpr double kCubic = 0.044715;
  static constexpr double kSqrt2OverPi = M_2_SQRTPI * M_SQRT1_2;
  static double two_u(double x) { return 2.0 * kSqrt2OverPi * (x + kCubic * x * x * x); }
  // s[i] = sigmoid(2u(x[i])).
  static void sigmoids(const double* x, double* s, int64_t n, const ExpUkernel& exp) {
    for (int64_t i = 0; i < n; ++i) s[i] = -std::abs(two_u(x[i]));
    exp.exp(s, s, n);
    for (int64_t i = 0; i < n; ++i) s[i] = sigmoid_from(two_u(x[i]), s[i]);
  }
  static void forward(double* v, int64_t n, double, const ExpUkernel& exp) {
    double s[kChunk] = {};  // (zeroed only to tell gcc that exp reads nothing unset)
    sigmoids(v, s, n, exp);
    // Clamping x to the finite range gives the limit 0 at -inf (-max * 0) instead of -inf * 0, and no branch.
    for (int64_t i = 0; i < n; ++i) v[i] = (v[i] < -kMaxDouble ? -kMaxDouble : v[i]) * s[i];
  }
  static void backward(double* g, const double* x, int64_t n, double, const ExpUkernel& exp) {
    double s[kChunk] = {};
    sigmoids(x, s, n, exp);
    for (int64_t i = 0; i < n; ++i) {
      const double spread = s[i] * (1.0 - s[i]);  // 0 once s saturates, also for x = +-inf
      const double du = kSqrt2OverPi * (1.0 + 3.0 * kCubic * x[i] * x[i]);
      g[i] *= spread == 0.0 ? s[i] : s[i] + 2.0 * x[i] * spread * du;
    }
  }
};

// Calls visit(Op{}) with the struct of `op`.
template <class Visit>
void visit_pointwise(Pointwise op, Visit&& visit) {
  switch (op) {
    case Pointwise::linear: return visit(Scalar<LinearScalar>{});
    case Pointwise::relu: return visit(Scalar<ReluScalar>{});
    case Pointwise::clipped_relu: return visit(Scalar<ClippedReluScalar>{});
    case Pointwise::leaky_relu: return visit(Scalar<LeakyReluScalar>{});
    case Pointwise::elu: return visit(Elu{});
    case Pointwise::sigmoid: return visit(Sigmoid{});
    case Pointwise::tanh: return visit(Tanh{});
    case Pointwise::gelu: return visit(Scalar<GeluScalar>{});
    case Pointwise::gelu_tanh: return visit(GeluTanh{});
    case Pointwise::hard_sigmoid: return visit(Scalar<HardSigmoidScalar>{});
    case Pointwise::hard_swish: return visit(Scalar<HardSwishScalar>{});
  }
  throw std::invalid_argument("unknown pointwise activation " + std::to_string(static_cast<int>(op)));
}

// Runs chunk(first, count) over [0, n) in chunks of at most kChunk values, the chunks split in contiguous
// shares over the threads (how many by the op's cost per value).
template <class Chunk>
void for_each_chunk(int64_t n, int cost, Chunk&& chunk) {
  for_each_share(ceil_div(n, kChunk), kChunk * cost, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) chunk(c * kChunk, std::min(kChunk, n - c * kChunk));
  });
}

void check_count(int64_t n) {
  if (n < 0) throw std::invalid_argument("activation: negative size " + std::to_string(n));
}

// PReLU's dslope partial sums: rows are cut into blocks of about this many values, a length fixed by the
// shape, and the blocks' sums are added in block order.
constexpr int64_t kPreluBlockValues = 8192;

void check_prelu(int64_t rows, int64_t channels, int64_t slope_count) {
  if (rows < 0 || channels < 1 || (slope_count != channels && slope_count != 1)) {
    throw std::invalid_argument("prelu: bad sizes (rows " + std::to_string(rows) + ", channels " +
                                std::to_string(channels) + ", slopes " + std::to_string(slope_count) + ")");
  }
  checked_mul(rows, channels, "prelu size");
}

}  // namespace

template <class T>
void pointwise_forward(Pointwise op, double alpha, int64_t n, const T* x, T* y) {
  check_count(n);
  const ExpUkernel& exp = selected_exp_ukernel();
  visit_pointwise(op, [&](auto f) {
    using Op = decltype(f);
    for_each_chunk(n, Op::cost, [&](int64_t first, int64_t count) {
      double v[kChunk];
      for (int64_t i = 0; i < count; ++i) v[i] = static_cast<double>(x[first + i]);
      Op::forward(v, count, alpha, exp);
      for (int64_t i = 0; i < count; ++i) y[first + i] = static_cast<T>(v[i]);
    });
  });
}

template <class T>
void pointwise_backward(Pointwise op, double alpha, int64_t n, const T* dy, const T* saved, T* dx) {
  check_count(n);
  const ExpUkernel& exp = selected_exp_ukernel();
  visit_pointwise(op, [&](auto f) {
    using Op = decltype(f);
    for_each_chunk(n, Op::cost, [&](int64_t first, int64_t count) {
      double g[kChunk], s[kChunk];
      for (int64_t i = 0; i < count; ++i) g[i] = static_cast<double>(dy[first + i]);
      for (int64_t i = 0; i < count; ++i) s[i] = static_cast<double>(saved[first + i]);
      Op::backward(g, s, count, alpha, exp);
      for (int64_t i = 0; i < count; ++i) dx[first + i] = static_cast<T>(g[i]);
    });
  });
}

template <class T>
void prelu_forward(int64_t rows, int64_t channels, const T* x, const T* slope, int64_t slope_count, T* y) {
  check_prelu(rows, channels, slope_count);
  const int64_t slope_step = slope_count == 1 ? 0 : 1;
  for_each_share(rows, channels, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < channels; ++c) {
        const double v = static_cast<double>(x[r * channels + c]);
        y[r * channels + c] = static_cast<T>(v > 0.0 ? v : static_cast<double>(slope[c * slope_step]) * v);
      }
    }
  });
}

template <class T>
void prelu_backward(int64_t rows, int64_t channels, const T* dy, const T* x, const T* slope, int64_t slope_count,
                    T* dx, T* dslope) {
  check_prelu(rows, channels, slope_count);
  const int64_t slope_step = slope_count == 1 ? 0 : 1;
  const int64_t block_rows = std::max<int64_t>(1, kPreluBlockValues / channels);
  const int64_t blocks = ceil_div(rows, block_rows);
  std::vector<double> block_sums(static_cast<std::size_t>(checked_mul(blocks, channels, "prelu partials")), 0.0);
  for_each_share(blocks, block_rows * channels, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      double* sums = block_sums.data() + b * channels;
      for (int64_t r = b * block_rows; r < std::min(rows, (b + 1) * block_rows); ++r) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t i = r * channels + c;
          const double v = static_cast<double>(x[i]), g = static_cast<double>(dy[i]);
          sums[c] += v > 0.0 ? 0.0 : g * v;
          dx[i] = static_cast<T>(v > 0.0 ? g : (v != v ? v : g * static_cast<double>(slope[c * slope_step])));
        }
      }
    }
  });
  std::vector<double> total(static_cast<std::size_t>(slope_count), 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t c = 0; c < channels; ++c) total[c * slope_step] += block_sums[b * channels + c];
  }
  for (int64_t s = 0; s < slope_count; ++s) dslope[s] = static_cast<T>(total[s]);
}

#define CONVKIT_INSTANTIATE_ACTIVATION(T)                                                                        \
  template void pointwise_forward<T>(Pointwise, double, int64_t, const T*, T*);                                  \
  template void pointwise_backward<T>(Pointwise, double, int64_t, const T*, const T*, T*);                       \
  template void prelu_forward<T>(int64_t, int64_t, const T*, const T*, int64_t, T*);                             \
  template void prelu_backward<T>(int64_t, int64_t, const T*, const T*, const T*, int64_t, T*, T*);
CONVKIT_INSTANTIATE_ACTIVATION(float)
CONVKIT_INSTANTIATE_ACTIVATION(double)
#undef CONVKIT_INSTANTIATE_ACTIVATION

}  // namespace convkit
