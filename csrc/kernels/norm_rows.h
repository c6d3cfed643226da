// The normalization row kernels (contract in kernels/norm_ukernel.h) as plain loops over the contiguous
// channels, which the compiler vectorises for the ISA of the translation unit that instantiates them:
// kernels/ref/ for the baseline, kernels/avx2/ with -mavx2 -mfma. The Isa template argument gives each
// ISA's instantiations their own symbols, so that the linker can never substitute one for the other (one
// definition rule); for the same reason the loops call no library functions.
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/norm_short_rows.h"
#include "kernels/norm_ukernel.h"

namespace convkit::norm_rows {

// The sums run down columns of kColumnWidth channels, whose accumulators can stay in registers over all the
// pixels (a row at a time would load and store every accumulator for every pixel). The driver's blocks of
// rows fit L1, so the column passes after the first find their rows there.
constexpr int kColumnWidth = 16;

// Calls columns(width constant, c) for the channels [c, c + width), covering [0, channels): full-width
// columns, then columns of 4, then single channels.
template <class Columns>
void for_each_column(std::int64_t channels, Columns&& columns) {
  std::int64_t c = 0;
  for (; c + kColumnWidth <= channels; c += kColumnWidth) columns(std::integral_constant<int, kColumnWidth>(), c);
  for (; c + 4 <= channels; c += 4) columns(std::integral_constant<int, 4>(), c);
  for (; c < channels; ++c) columns(std::integral_constant<int, 1>(), c);
}

template <Isa isa, int width, class T>
void column_block_sums(const T* x, std::int64_t pixels, std::int64_t channels, const T* shift, double* s1,
                       double* s2) noexcept {
  double k[width], a1[width], a2[width];
  for (int j = 0; j < width; ++j) k[j] = static_cast<double>(shift[j]), a1[j] = 0.0, a2[j] = 0.0;
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* row = x + p * channels;
    for (int j = 0; j < width; ++j) {
      const double d = static_cast<double>(row[j]) - k[j];
      a1[j] += d;
      a2[j] += d * d;
    }
  }
  for (int j = 0; j < width; ++j) s1[j] = a1[j], s2[j] = a2[j];
}

template <Isa isa, class T>
void block_sums(const T* x, std::int64_t pixels, std::int64_t channels, const T* shift, double* s1,
                double* s2) noexcept {
  for_each_column(channels, [&](auto width, std::int64_t c) {
    column_block_sums<isa, width()>(x + c, pixels, channels, shift + c, s1 + c, s2 + c);
  });
}

// The row passes read and write each value once: __restrict lets the compiler vectorise without runtime
// overlap checks, which cost more than the work on rows of a few dozen channels.
template <Isa isa, class T>
void normalize_rows(const T* __restrict x, std::int64_t pixels, std::int64_t channels, const T* __restrict center,
                    const T* __restrict center_low, const T* __restrict scale, const T* __restrict offset,
                    T* __restrict y) noexcept {
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* row = x + p * channels;
    T* out = y + p * channels;
    for (std::int64_t c = 0; c < channels; ++c) {
      out[c] = ((row[c] - center[c]) - center_low[c]) * scale[c] + offset[c];
    }
  }
}

template <Isa isa, int width, class T>
void column_gradient_sums(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                          double* sum_dy, double* sum_dy_centered) noexcept {
  double k[width], a1[width], a2[width];
  for (int j = 0; j < width; ++j) k[j] = center[j], a1[j] = 0.0, a2[j] = 0.0;
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* dy_row = dy + p * channels;
    const T* x_row = x + p * channels;
    for (int j = 0; j < width; ++j) {
      const double d = static_cast<double>(dy_row[j]);
      a1[j] += d;
      a2[j] += d * (static_cast<double>(x_row[j]) - k[j]);
    }
  }
  for (int j = 0; j < width; ++j) sum_dy[j] = a1[j], sum_dy_centered[j] = a2[j];
}

template <Isa isa, class T>
void gradient_sums(const T* dy, const T* x, std::int64_t pixels, std::int64_t channels, const double* center,
                   double* sum_dy, double* sum_dy_centered) noexcept {
  for_each_column(channels, [&](auto width, std::int64_t c) {
    column_gradient_sums<isa, width()>(dy + c, x + c, pixels, channels, center + c, sum_dy + c, sum_dy_centered + c);
  });
}

template <Isa isa, class T>
void gradient_rows(const T* __restrict dy, const T* __restrict x, std::int64_t pixels, std::int64_t channels,
                   const T* __restrict dy_scale, const T* __restrict x_scale, const T* __restrict offset,
                   const T* __restrict center, const T* __restrict center_low, T* __restrict dx) noexcept {
  for (std::int64_t p = 0; p < pixels; ++p) {
    const T* dy_row = dy + p * channels;
    const T* x_row = x + p * channels;
    T* out = dx + p * channels;
    for (std::int64_t c = 0; c < channels; ++c) {
      out[c] = dy_row[c] * dy_scale[c] + ((x_row[c] - center[c]) - center_low[c]) * x_scale[c] + offset[c];
    }
  }
}

template <Isa isa, class T>
constexpr NormUkernel<T> kernel(const char* name) {
  return {name,
          isa,
          &block_sums<isa, T>,
          &normalize_rows<isa, T>,
          &gradient_sums<isa, T>,
          &gradient_rows<isa, T>,
          &short_rows::forward<isa, T>,
          &short_rows::backward<isa, T>};
}

}  // namespace convkit::norm_rows
