// The normalization row kernels (contract in kernels/norm_ukernel.h) as plain loops over the contiguous
// channels, which the compiler vectorises for the ISA of the translation unit that instantiates them:
// kernels/ref/ for the baseline, kernels/avx2/ with -mavx2 -mfma. The Isa template argument gives each
// ISA's instantiations their own symbols, so that the linker can never substitute one for the other (one
// definition rule); for the same reason the loops call no library functions.
#pragma once
#include <cstdint>

#include "kernels/norm_ukernel.h"

namespace convkit::norm_rows {

template <Isa isa, class T>
void block_sums(const T* x, std::int64_t pixels, std::int64_t channels, double* shift, double* s1,
                double* s2) noexcept {
  for (std::int64_t c = 0; c < channels; ++c) shift[c] = static_cast<double>(x[c]), s1[c] = 0.0, s2[c] = 0.0;
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* row = x + p * channels;
    for (std::int64_t c = 0; c < channels; ++c) {
      const double d = static_cast<double>(row[c]) - shift[c];
      s1[c] += d;
      s2[c] += d * d;
    }
  }
}

template <Isa isa, class T>
void normalize_row(const T* x, std::int64_t channels, const double* center, const double* scale,
                   const double* offset, T* y) noexcept {
  for (std::int64_t c = 0; c < channels; ++c) {
    y[c] = static_cast<T>((static_cast<double>(x[c]) - center[c]) * scale[c] + offset[c]);
  }
}

template <Isa isa, class T>
void gradient_sums(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                   double* sum_dy, double* sum_dy_centered) noexcept {
  for (std::int64_t c = 0; c < channels; ++c) sum_dy[c] = 0.0, sum_dy_centered[c] = 0.0;
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* dy_row = dy + p * channels;
    const T* x_row = x + p * channels;
    for (std::int64_t c = 0; c < channels; ++c) {
      const double d = static_cast<double>(dy_row[c]);
      sum_dy[c] += d;
      sum_dy_centered[c] += d * (static_cast<double>(x_row[c]) - center[c]);
    }
  }
}

template <Isa isa, class T>
void gradient_row(const T* dy, const T* x, std::int64_t channels, const double* dy_scale, const double* x_scale,
                  const double* offset, const double* center, T* dx) noexcept {
  for (std::int64_t c = 0; c < channels; ++c) {
    dx[c] = static_cast<T>(static_cast<double>(dy[c]) * dy_scale[c] +
                           (static_cast<double>(x[c]) - center[c]) * x_scale[c] + offset[c]);
  }
}

template <Isa isa, class T>
constexpr NormUkernel<T> kernel(const char* name) {
  return {name, isa, &block_sums<isa, T>, &normalize_row<isa, T>, &gradient_sums<isa, T>, &gradient_row<isa, T>};
}

}  // namespace convkit::norm_rows
