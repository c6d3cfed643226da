// The short-row normalization kernels (contract in kernels/norm_ukernel.h) as plain loops, which the compiler
// vectorises for the ISA of the translation unit that instantiates them; the Isa template argument keeps each
// ISA's instantiations apart (see kernels/norm_rows.h). A row's sums keep kLanes partial sums, lane j taking
// values j, j + kLanes, ...: a single double sum may not be reordered, so it would not vectorise.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit::short_rows {

constexpr int kLanes = 4;

// A row's mean and 1 / sqrt(var + eps) from its sums shifted by `shift` (s1 = sum(x - shift),
// s2 = sum((x - shift)^2)): the biased variance is (s2 - s1 * s1 / n) / n, clamped at 0 against rounding.
template <Isa isa>
inline void finish_statistics(double shift, double s1, double s2, std::int64_t values, double eps, double* mean,
                              double* inv_std) {
  const double n = static_cast<double>(values), shifted_mean = s1 / n, m2 = s2 - s1 * shifted_mean;
  *mean = shift + shifted_mean;
  *inv_std = 1.0 / __builtin_sqrt((m2 > 0.0 ? m2 : 0.0) / n + eps);
}

// v as the unevaluated sum high + low of two T values (low is 0 for double): with high the rounding of a
// row's mean, x - high is exact for the x near it, so centring in T loses nothing to the mean's rounding.
template <Isa isa, class T>
inline void split(double v, T* high, T* low) {
  *high = static_cast<T>(v);
  *low = static_cast<T>(v - static_cast<double>(*high));
}

template <Isa isa, class T>
void row_sums(const T* row, std::int64_t values, double shift, double* s1, double* s2) {
  double a1[kLanes] = {}, a2[kLanes] = {};
  std::int64_t k = 0;
  for (; k + kLanes <= values; k += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const double d = static_cast<double>(row[k + j]) - shift;
      a1[j] += d;
      a2[j] += d * d;
    }
  }
  for (; k < values; ++k) {
    const double d = static_cast<double>(row[k]) - shift;
    a1[0] += d;
    a2[0] += d * d;
  }
  *s1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
  *s2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
}

template <Isa isa, class T>
void forward(const T* x, std::int64_t rows, std::int64_t values, double eps, const T* __restrict gamma,
             const T* __restrict beta, T* y, double* mean, double* inv_std) noexcept {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* __restrict row = x + r * values;
    double s1, s2;
    const double shift = static_cast<double>(row[0]);
    row_sums<isa>(row, values, shift, &s1, &s2);
    finish_statistics<isa>(shift, s1, s2, values, eps, mean + r, inv_std + r);
    T center, center_low;
    split<isa>(mean[r], &center, &center_low);
    const T scale = static_cast<T>(inv_std[r]);
    T* __restrict out = y + r * values;
    for (std::int64_t k = 0; k < values; ++k) out[k] = ((row[k] - center) - center_low) * scale * gamma[k] + beta[k];
  }
}

template <Isa isa, class T>
void backward(const T* dy, const T* x, std::int64_t rows, std::int64_t values, const double* mean,
              const double* inv_std, const T* __restrict gamma, const double* __restrict gamma_wide, T* dx,
              double* __restrict sum_dy, double* __restrict sum_dy_xhat) noexcept {
  const double n = static_cast<double>(values);
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* __restrict dy_row = dy + r * values;
    const T* __restrict x_row = x + r * values;
    const double m = mean[r], s = inv_std[r];
    double a[kLanes] = {}, b[kLanes] = {};
    auto accumulate = [&](std::int64_t k, int lane) {
      const double d = static_cast<double>(dy_row[k]), xhat = (static_cast<double>(x_row[k]) - m) * s;
      const double dg = d * gamma_wide[k];
      a[lane] += dg;
      b[lane] += dg * xhat;
      sum_dy[k] += d;
      sum_dy_xhat[k] += d * xhat;
    };
    std::int64_t k = 0;
    for (; k + kLanes <= values; k += kLanes) {
      for (int j = 0; j < kLanes; ++j) accumulate(k + j, j);
    }
    for (; k < values; ++k) accumulate(k, 0);
    const double mean_dg = ((a[0] + a[1]) + (a[2] + a[3])) / n, mean_dg_xhat = ((b[0] + b[1]) + (b[2] + b[3])) / n;
    // dx = dy*gamma * s + (x - m) * (-s * s * mean_dg_xhat) - s * mean_dg, each coefficient rounded once.
    T center, center_low;
    split<isa>(m, &center, &center_low);
    const T dy_scale = static_cast<T>(s), x_scale = static_cast<T>(-s * s * mean_dg_xhat);
    const T offset = static_cast<T>(-s * mean_dg);
    T* __restrict out = dx + r * values;
    for (std::int64_t j = 0; j < values; ++j) {
      out[j] = dy_row[j] * gamma[j] * dy_scale + (((x_row[j] - center) - center_low) * x_scale + offset);
    }
  }
}

}  // namespace convkit::short_rows
