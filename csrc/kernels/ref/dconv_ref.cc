// Readable reference direct-convolution kernels (the contract is in kernels/dconv_ukernel.h): one output
// value at a time, plain loops in the contract's order. Compiled for the baseline ISA, they are the
// portable path.
#include "kernels/dconv_ukernel.h"

namespace convkit {
namespace {

using std::int64_t;

// Calls visit(source, weights) for every tap in the contract's order: rows, then columns.
template <class T, class Weight, class Visit>
void for_each_tap(const DconvTaps<T, Weight>& taps, Visit&& visit) {
  for (int64_t r = 0; r < taps.rows; ++r) {
    for (int64_t k = 0; k < taps.columns; ++k) visit(taps.row_src[r] + taps.column_src[k], taps.row_w[r] + taps.column_w[k]);
  }
}

template <class T>
void forward_ref(const DconvRun& run, const DconvTaps<T, const T>& taps, const T* bias, Activation activation,
                 T negative_slope, T* dst) noexcept {
  for (int64_t j = 0; j < run.pixels; ++j) {
    for (int64_t f = 0; f < run.out_channels; ++f) {
      T sum = T(0);
      for_each_tap(taps, [&](const T* src, const T* w) {
        for (int64_t c = 0; c < run.in_channels; ++c) sum += src[j * run.src_stride + c] * w[c * run.w_ld + f];
      });
      if (bias) sum += bias[f];
      dst[j * run.dst_stride + f] = activate(sum, activation, negative_slope);
    }
  }
}

template <class T>
void backward_weights_ref(const DconvRun& run, const DconvTaps<T, T>& taps, const T* dy, T* db) noexcept {
  for_each_tap(taps, [&](const T* src, T* dw) {
    for (int64_t c = 0; c < run.in_channels; ++c) {
      for (int64_t f = 0; f < run.out_channels; ++f) {
        T sum = T(0);
        for (int64_t j = 0; j < run.pixels; ++j) sum += src[j * run.src_stride + c] * dy[j * run.dst_stride + f];
        dw[c * run.w_ld + f] += sum;
      }
    }
  });
  if (!db) return;
  for (int64_t f = 0; f < run.out_channels; ++f) {
    T sum = T(0);
    for (int64_t j = 0; j < run.pixels; ++j) sum += dy[j * run.dst_stride + f];
    db[f] += sum;
  }
}

}  // namespace

const DconvUkernel<float> f32_dconv_1x1_ref = {"f32-dconv-1x1-ref", Isa::ref, forward_ref<float>,
                                               backward_weights_ref<float>};
const DconvUkernel<double> f64_dconv_1x1_ref = {"f64-dconv-1x1-ref", Isa::ref, forward_ref<double>,
                                                backward_weights_ref<double>};

}  // namespace convkit
