// The per-thread tap table of the direct convolution drivers (ops/depthwise.cc, ops/conv_direct.cc): for
// one output row, the source rows and weight rows its D x H taps read; for one run of pixels along W, the
// column offsets of its W taps. The kernels read it as DwconvTaps.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/checked_math.h"
#include "kernels/dwconv_ukernel.h"
#include "ops/pixel_layout.h"
#include "ops/tap_map.h"

namespace convkit {

// Plan: a driver's plan, with AxisTaps depth, height and width and the kernel's extents kernel[0..2].
// Weight is const T (w) or T (dw, which backward weights adds into).
template <class T, class Weight>
class TapTable {
 public:
  template <class Plan>
  explicit TapTable(const Plan& plan)
      : row_src_(checked_mul(plan.depth.max_count(), plan.height.max_count(), "convolution taps")),
        row_w_(row_src_.size()),
        column_src_(plan.width.max_count()),
        column_w_(column_src_.size()) {}

  // The rows of output row (d, h) of one image, read from `image` laid out as `from`, and the rows of
  // `weights` (`tap_elements` values per kernel offset) for kernel column 0.
  template <class Plan>
  void set_rows(const Plan& plan, std::int64_t d, std::int64_t h, const T* image, const PixelLayout& from,
                Weight* weights, std::int64_t tap_elements) {
    rows_ = 0;
    for (const AxisTap* td = plan.depth.begin(d); td != plan.depth.end(d); ++td) {
      for (const AxisTap* th = plan.height.begin(h); th != plan.height.end(h); ++th, ++rows_) {
        row_src_[rows_] = image + (td->source * from.spatial[1] + th->source) * from.row_elements();
        row_w_[rows_] = weights + (td->kernel * plan.kernel[1] + th->kernel) * plan.kernel[2] * tap_elements;
      }
    }
  }

  // The same for output row (n, d, h) of a batch `src` laid out as `from`.
  template <class Plan>
  void set_rows(const Plan& plan, const std::array<std::int64_t, 3>& ndh, const T* src, const PixelLayout& from,
                Weight* weights, std::int64_t tap_elements) {
    set_rows(plan, ndh[1], ndh[2], src + ndh[0] * from.image_elements(), from, weights, tap_elements);
  }

  // The columns of `run`: source pixels `channels` elements apart, weight rows `tap_elements` apart.
  template <class Plan>
  void set_columns(const Plan& plan, const AxisRun& run, std::int64_t channels, std::int64_t tap_elements) {
    columns_ = 0;
    for (const AxisTap* tw = plan.width.begin(run.first); tw != plan.width.end(run.first); ++tw, ++columns_) {
      column_src_[columns_] = tw->source * channels;
      column_w_[columns_] = tw->kernel * tap_elements;
    }
  }

  void advance_sources(std::int64_t elements) {
    for (std::int64_t r = 0; r < rows_; ++r) row_src_[r] += elements;
  }

  DwconvTaps<T, Weight> taps() const {
    return {rows_, columns_, row_src_.data(), row_w_.data(), column_src_.data(), column_w_.data()};
  }

 private:
  std::int64_t rows_ = 0, columns_ = 0;
  std::vector<const T*> row_src_;
  std::vector<Weight*> row_w_;
  std::vector<std::int64_t> column_src_, column_w_;
};

// Elements between consecutive pixels of `run` that lie `index_step` indices apart. A one-pixel run has
// none: its step is a stride, which may be as large as 2**63 - 1, and step * elements would overflow.
// Within a longer run every step lands inside the array, so the product fits.
inline std::int64_t pixel_stride(const AxisRun& run, std::int64_t index_step, std::int64_t elements) {
  return run.count > 1 ? index_step * elements : 0;
}

}  // namespace convkit
