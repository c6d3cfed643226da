// Readable reference depthwise kernels (the contract is in kernels/dwconv_ukernel.h): one output value
// at a time, plain loops in the contract's order. Compiled for the baseline ISA they are the portable
// path; the SIMD kernels call them (through dwconv_reference_ukernel) for a channel multiplier above 1.
#pragma once
#include <cstdint>

#include "kernels/dwconv_ukernel.h"

namespace convkit {

// Calls visit(source, weights) for every tap in the contract's order: rows, then columns.
template <class T, class Weight, class Visit>
void for_each_dwconv_tap(const DwconvTaps<T, Weight>& taps, Visit&& visit) {
  for (std::int64_t r = 0; r < taps.rows; ++r) {
    for (std::int64_t k = 0; k < taps.columns; ++k) {
      visit(taps.row_src[r] + taps.column_src[k], taps.row_w[r] + taps.column_w[k]);
    }
  }
}

template <class T>
void dwconv_forward_ref(const DwconvRun& run, const DwconvTaps<T, const T>& taps, const T* bias,
                        Activation activation, T negative_slope, T* y) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t j = 0; j < run.pixels; ++j) {
    for (std::int64_t c = 0; c < run.channels; ++c) {
      for (std::int64_t q = 0; q < m; ++q) {
        T sum = bias ? bias[c * m + q] : T(0);
        for_each_dwconv_tap(taps, [&](const T* x, const T* w) { sum += x[j * run.src_stride + c] * w[c * m + q]; });
        y[j * run.dst_stride + c * m + q] = activate(sum, activation, negative_slope);
      }
    }
  }
}

template <class T>
void dwconv_backward_data_ref(const DwconvRun& run, const DwconvTaps<T, const T>& taps, T* dx) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t j = 0; j < run.pixels; ++j) {
    for (std::int64_t c = 0; c < run.channels; ++c) {
      T sum = T(0);
      for_each_dwconv_tap(taps, [&](const T* dy, const T* w) {
        for (std::int64_t q = 0; q < m; ++q) sum += dy[j * run.src_stride + c * m + q] * w[c * m + q];
      });
      dx[j * run.dst_stride + c] = sum;
    }
  }
}

template <class T>
void dwconv_backward_weights_ref(const DwconvRun& run, const DwconvTaps<T, T>& taps, const T* dy, T* db) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t c = 0; c < run.channels; ++c) {
    for (std::int64_t q = 0; q < m; ++q) {
      const std::int64_t f = c * m + q;
      for_each_dwconv_tap(taps, [&](const T* x, T* dw) {
        T sum = T(0);
        for (std::int64_t j = 0; j < run.pixels; ++j) sum += x[j * run.src_stride + c] * dy[j * run.dst_stride + f];
        dw[f] += sum;
      });
      if (db) {
        T sum = T(0);
        for (std::int64_t j = 0; j < run.pixels; ++j) sum += dy[j * run.dst_stride + f];
        db[f] += sum;
      }
    }
  }
}

template <class T>
constexpr DwconvUkernel<T> dwconv_ref_kernel(const char* name) {
  return {name, Isa::ref, dwconv_forward_ref<T>, dwconv_backward_data_ref<T>, dwconv_backward_weights_ref<T>};
}

}  // namespace convkit
