// im2col / col2im for channels-last N-d convolution (see ops/conv.h for ConvGeometry).
//
// Row p of the column matrix of group `group` holds, for each kernel offset (kd, kh, kw) in order, the Cg
// channels of that group at the input position the offset reads for output pixel p. Padding is resolved
// by index mapping (source_index), never by materialising a padded copy of x. col2im is the exact
// adjoint: it adds each column entry back onto the input element it was read from, so a reflected or
// wrapped position receives the gradient of every padded sample that copied it.
#pragma once
#include <algorithm>
#include <cstdint>

#include "ops/conv.h"

namespace convkit {

// The input index a padded coordinate reads, or -1 for a zero.
inline std::int64_t source_index(std::int64_t i, std::int64_t size, PaddingMode mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PaddingMode::zeros: return -1;
    case PaddingMode::reflect: return i < 0 ? -i : 2 * (size - 1) - i;  // edge sample not repeated
    case PaddingMode::replicate: return i < 0 ? 0 : size - 1;
    case PaddingMode::circular: return ((i % size) + size) % size;
  }
  return -1;
}

// Calls visit(offset, column) for every kernel tap of output pixel p, in column-row order: offset is the
// element offset of the tap's input pixel (channel 0) from x, or -1 where it reads a zero; column is the
// index of the tap's first entry in the column row.
template <class Visit>
void for_each_tap(const ConvGeometry& g, std::int64_t p, Visit&& visit) {
  std::int64_t rest = p;
  const std::int64_t ow = rest % g.out[2]; rest /= g.out[2];
  const std::int64_t oh = rest % g.out[1]; rest /= g.out[1];
  const std::int64_t od = rest % g.out[0];
  const std::int64_t n = rest / g.out[0];
  const std::int64_t image = n * g.in[0];
  const std::int64_t cg = g.in_channels / g.groups;
  std::int64_t column = 0;
  for (std::int64_t kd = 0; kd < g.kernel[0]; ++kd) {
    const std::int64_t id = source_index(od * g.stride[0] - g.pad_before[0] + kd * g.dilation[0], g.in[0], g.mode);
    for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
      const std::int64_t ih = source_index(oh * g.stride[1] - g.pad_before[1] + kh * g.dilation[1], g.in[1], g.mode);
      for (std::int64_t kw = 0; kw < g.kernel[2]; ++kw, column += cg) {
        const std::int64_t iw = source_index(ow * g.stride[2] - g.pad_before[2] + kw * g.dilation[2], g.in[2], g.mode);
        const bool zero = id < 0 || ih < 0 || iw < 0;
        visit(zero ? -1 : (((image + id) * g.in[1] + ih) * g.in[2] + iw) * g.in_channels, column);
      }
    }
  }
}

// Rows [p0, p1) of group `group`'s column matrix into cols (row length prod(K) * Cg, contiguous).
template <class T>
void im2col_rows(const ConvGeometry& g, const T* x, std::int64_t group, std::int64_t p0, std::int64_t p1, T* cols) {
  const std::int64_t cg = g.in_channels / g.groups;
  const std::int64_t row_len = g.kernel[0] * g.kernel[1] * g.kernel[2] * cg;
  const T* xg = x + group * cg;
  for (std::int64_t p = p0; p < p1; ++p) {
    T* row = cols + (p - p0) * row_len;
    for_each_tap(g, p, [&](std::int64_t offset, std::int64_t column) {
      if (offset < 0) {
        std::fill(row + column, row + column + cg, T(0));
      } else {
        std::copy(xg + offset, xg + offset + cg, row + column);
      }
    });
  }
}

// dx += col2im(cols) for rows [p0, p1) of group `group`. Rows must not be split between threads that
// share an image: two output pixels can read the same input element.
template <class T>
void col2im_rows(const ConvGeometry& g, const T* cols, std::int64_t group, std::int64_t p0, std::int64_t p1, T* dx) {
  const std::int64_t cg = g.in_channels / g.groups;
  const std::int64_t row_len = g.kernel[0] * g.kernel[1] * g.kernel[2] * cg;
  T* dxg = dx + group * cg;
  for (std::int64_t p = p0; p < p1; ++p) {
    const T* row = cols + (p - p0) * row_len;
    for_each_tap(g, p, [&](std::int64_t offset, std::int64_t column) {
      if (offset < 0) return;
      T* dst = dxg + offset;
      const T* src = row + column;
      for (std::int64_t c = 0; c < cg; ++c) dst[c] += src[c];
    });
  }
}

}  // namespace convkit
