// Elementwise activation and PReLU drivers (formulas in activation.h).
//
// Each pointwise activation is a struct of two scalar functions in double (forward(x), backward(dy, saved))
// that the driver maps over contiguous shares of the array, one share per thread. The cheap ones (relu,
// leaky_relu, linear, hard_*) inline into loops gcc vectorises; the others call the C library's exp, expm1,
// tanh and erfc in double, so float32 results are the double result rounded once (within an ulp of the
// exact value), and float64 results carry the library's error (an ulp or two) plus the formula's.
#include "ops/activation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// `cost`: roughly how many cheap elementwise operations one value costs, for deciding how many threads
// a pass deserves (a libm call is worth ~20 adds).
constexpr int kCheap = 1;
constexpr int kLibmCall = 20;

double stable_sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);  // NaN lands here and stays NaN
  return e / (1.0 + e);
}

struct Linear {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return x; }
  static double backward(double dy, double, double) { return dy; }
};

struct Relu {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return activate(x, Activation::relu, 0.0); }
  static double backward(double dy, double y, double) { return activate_gradient(dy, y, Activation::relu, 0.0); }
};

struct LeakyRelu {
  static constexpr int cost = kCheap;
  static double forward(double x, double alpha) { return activate(x, Activation::leaky_relu, alpha); }
  static double backward(double dy, double y, double alpha) {
    return activate_gradient(dy, y, Activation::leaky_relu, alpha);
  }
};

struct Elu {
  static constexpr int cost = kLibmCall;
  static double forward(double x, double alpha) { return x > 0.0 ? x : alpha * std::expm1(x); }
  // For x <= 0, d/dx alpha * (e^x - 1) = alpha * e^x = y + alpha.
  static double backward(double dy, double y, double alpha) {
    if (y > 0.0) return dy;
    return y != y ? y : dy * (y + alpha);
  }
};

struct Sigmoid {
  static constexpr int cost = kLibmCall;
  static double forward(double x, double) { return stable_sigmoid(x); }
  static double backward(double dy, double y, double) { return dy * y * (1.0 - y); }
};

struct Tanh {
  static constexpr int cost = kLibmCall;
  static double forward(double x, double) { return std::tanh(x); }
  static double backward(double dy, double y, double) { return dy * (1.0 - y * y); }
};

// Exact GELU. Phi(x) = erfc(-x / sqrt 2) / 2 keeps its relative accuracy for negative x, where
// 1 + erf(x / sqrt 2) would cancel. The zero tests give the limits at -inf (0) instead of -inf * 0.
struct Gelu {
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

// GELU's tanh approximation, written as x * sigmoid(2u) (= x / 2 * (1 + tanh u)) so that negative x does
// not cancel in 1 + tanh u.
struct GeluTanh {
  static constexpr int cost = kLibmCall;
  static constexpr double kCubic = 0.044715;
  static double u(double x) { return M_2_SQRTPI * M_SQRT1_2 * (x + kCubic * x * x * x); }
  static double forward(double x, double) {
    const double s = stable_sigmoid(2.0 * u(x));
    return s == 0.0 ? 0.0 : x * s;
  }
  static double backward(double dy, double x, double) {
    const double s = stable_sigmoid(2.0 * u(x));
    const double spread = s * (1.0 - s);  // 0 once s saturates, also for x = +-inf
    if (spread == 0.0) return dy * s;
    const double du = M_2_SQRTPI * M_SQRT1_2 * (1.0 + 3.0 * kCubic * x * x);
    return dy * (s + 2.0 * x * spread * du);
  }
};

// MobileNetV3's piecewise-linear sigmoid and swish.
double relu6_of_x_plus_3(double x) {
  const double r = x + 3.0;
  return r < 0.0 ? 0.0 : (r > 6.0 ? 6.0 : r);  // NaN passes through
}

struct HardSigmoid {
  static constexpr int cost = kCheap;
  static double forward(double x, double) { return relu6_of_x_plus_3(x) / 6.0; }
  static double backward(double dy, double x, double) {
    if (x != x) return x;
    return x > -3.0 && x < 3.0 ? dy / 6.0 : 0.0;
  }
};

struct HardSwish {
  static constexpr int cost = kCheap;
  static double forward(double x, double) {
    const double r = relu6_of_x_plus_3(x);
    return r == 0.0 ? 0.0 : x * r / 6.0;  // 0 rather than -inf * 0 at -inf
  }
  static double backward(double dy, double x, double) {
    if (x != x) return x;
    if (x < -3.0) return 0.0;
    return x <= 3.0 ? dy * (2.0 * x + 3.0) / 6.0 : dy;
  }
};

// Calls visit(Op{}) with the struct of `op`.
template <class Visit>
auto visit_pointwise(Pointwise op, Visit&& visit) {
  switch (op) {
    case Pointwise::linear: return visit(Linear{});
    case Pointwise::relu: return visit(Relu{});
    case Pointwise::leaky_relu: return visit(LeakyRelu{});
    case Pointwise::elu: return visit(Elu{});
    case Pointwise::sigmoid: return visit(Sigmoid{});
    case Pointwise::tanh: return visit(Tanh{});
    case Pointwise::gelu: return visit(Gelu{});
    case Pointwise::gelu_tanh: return visit(GeluTanh{});
    case Pointwise::hard_sigmoid: return visit(HardSigmoid{});
    case Pointwise::hard_swish: return visit(HardSwish{});
  }
  throw std::invalid_argument("unknown pointwise activation " + std::to_string(static_cast<int>(op)));
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
  visit_pointwise(op, [&](auto f) {
    using Op = decltype(f);
    for_each_share(n, Op::cost, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = static_cast<T>(Op::forward(static_cast<double>(x[i]), alpha));
    });
  });
}

template <class T>
void pointwise_backward(Pointwise op, double alpha, int64_t n, const T* dy, const T* saved, T* dx) {
  check_count(n);
  visit_pointwise(op, [&](auto f) {
    using Op = decltype(f);
    for_each_share(n, Op::cost, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        dx[i] = static_cast<T>(Op::backward(static_cast<double>(dy[i]), static_cast<double>(saved[i]), alpha));
      }
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
