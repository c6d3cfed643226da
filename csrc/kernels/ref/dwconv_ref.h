// Readable reference depthwise kernels (the contract is in kernels/dwconv_ukernel.h): one output value
// at a time, plain loops in the contract's order. Compiled for the baseline ISA they are the portable
// path; the SIMD kernels also run them for a channel multiplier above 1.
#pragma once
#include <cstdint>

#include "kernels/dwconv_ukernel.h"

namespace convkit {

template <class T>
void dwconv_forward_ref(const DwconvRun& run, std::int64_t taps, const T* const* x, const T* const* w,
                        const T* bias, Activation activation, T negative_slope, T* y) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t j = 0; j < run.pixels; ++j) {
    for (std::int64_t c = 0; c < run.channels; ++c) {
      for (std::int64_t q = 0; q < m; ++q) {
        T sum = bias ? bias[c * m + q] : T(0);
        for (std::int64_t t = 0; t < taps; ++t) sum += x[t][j * run.src_stride + c] * w[t][c * m + q];
        y[j * run.dst_stride + c * m + q] = activate(sum, activation, negative_slope);
      }
    }
  }
}

template <class T>
void dwconv_backward_data_ref(const DwconvRun& run, std::int64_t taps, const T* const* dy, const T* const* w,
                              T* dx) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t j = 0; j < run.pixels; ++j) {
    for (std::int64_t c = 0; c < run.channels; ++c) {
      T sum = T(0);
      for (std::int64_t t = 0; t < taps; ++t) {
        for (std::int64_t q = 0; q < m; ++q) sum += dy[t][j * run.src_stride + c * m + q] * w[t][c * m + q];
      }
      dx[j * run.dst_stride + c] = sum;
    }
  }
}

template <class T>
void dwconv_backward_weights_ref(const DwconvRun& run, std::int64_t taps, const T* const* x, const T* dy,
                                 T* const* dw, T* db) noexcept {
  const std::int64_t m = run.multiplier;
  for (std::int64_t c = 0; c < run.channels; ++c) {
    for (std::int64_t q = 0; q < m; ++q) {
      const std::int64_t f = c * m + q;
      for (std::int64_t t = 0; t < taps; ++t) {
        T sum = T(0);
        for (std::int64_t j = 0; j < run.pixels; ++j) sum += x[t][j * run.src_stride + c] * dy[j * run.dst_stride + f];
        dw[t][f] += sum;
      }
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
