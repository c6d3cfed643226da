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
#include <vector>

#include "ops/conv.h"
#include "ops/gemm.h"

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

// Where output pixel p's kernel taps start: the element offset of its image in x divided by the
// channels and the padded coordinate of tap 0 on each axis.
struct PixelOrigin {
  std::int64_t image_row;  // n * in[0]: the first depth row of the pixel's image
  std::int64_t coord[3];

  static PixelOrigin of(const ConvGeometry& g, std::int64_t p) {
    PixelOrigin origin;
#pragma GCC unroll 3
    for (int a = 2; a >= 0; --a) {
      origin.coord[a] = p % g.out[a] * g.stride[a] - g.pad_before[a];
      p /= g.out[a];
    }
    origin.image_row = p * g.in[0];
    return origin;
  }

  // Offset of the input pixel (channel 0) tap (kd, kh, kw) reads, or -1 where it reads a zero.
  std::int64_t tap_offset(const ConvGeometry& g, std::int64_t kd, std::int64_t kh, std::int64_t kw) const {
    const std::int64_t id = source_index(coord[0] + kd * g.dilation[0], g.in[0], g.mode);
    const std::int64_t ih = source_index(coord[1] + kh * g.dilation[1], g.in[1], g.mode);
    const std::int64_t iw = source_index(coord[2] + kw * g.dilation[2], g.in[2], g.mode);
    if (id < 0 || ih < 0 || iw < 0) return -1;
    return (((image_row + id) * g.in[1] + ih) * g.in[2] + iw) * g.in_channels;
  }

  // The origin of output pixel p + 1, from this one of pixel p: no divisions.
  // (The loops here are unrolled so that an origin can live in registers: copied from memory right after
  // being written piecewise, it stalled store forwarding, a quarter of the packing's time.)
  void advance(const ConvGeometry& g) {
#pragma GCC unroll 3
    for (int a = 2; a >= 0; --a) {
      coord[a] += g.stride[a];
      if (coord[a] <= (g.out[a] - 1) * g.stride[a] - g.pad_before[a]) return;
      coord[a] = -g.pad_before[a];
    }
    image_row += g.in[0];
  }

  // Whether every tap reads inside x, on every axis: then each tap reads at interior_offset plus a delta
  // that depends on the tap alone (Im2colA::Tap).
  bool interior(const ConvGeometry& g) const {
#pragma GCC unroll 3
    for (int a = 0; a < 3; ++a) {
      if (coord[a] < 0 || coord[a] + (g.kernel[a] - 1) * g.dilation[a] >= g.in[a]) return false;
    }
    return true;
  }
  std::int64_t interior_offset(const ConvGeometry& g) const {
    return (((image_row + coord[0]) * g.in[1] + coord[1]) * g.in[2] + coord[2]) * g.in_channels;
  }
};

// Whether the kW taps of every (kd, kh) row of `origin` read one contiguous run of kW * C values of x:
// no groups (a pixel's channels are all the group's), no dilation along W, and no W padding in the way.
inline bool taps_contiguous_along_w(const ConvGeometry& g, const PixelOrigin& origin) {
  return g.groups == 1 && g.dilation[2] == 1 && origin.coord[2] >= 0 && origin.coord[2] + g.kernel[2] <= g.in[2];
}

// Calls visit(offset, column, length) for the runs of output pixel p's column-matrix row, in order: the
// run's `length` values start at element `offset` of x (relative to the group's first channel; -1 for a
// run of zeros) and at `column` of the row. A run is one tap's Cg channels, or a whole (kd, kh) row of
// taps where taps_contiguous_along_w.
template <class Visit>
void for_each_run(const ConvGeometry& g, const PixelOrigin& origin, Visit&& visit) {
  const std::int64_t cg = g.in_channels / g.groups;
  const bool whole_rows = taps_contiguous_along_w(g, origin);
  const std::int64_t taps_per_run = whole_rows ? g.kernel[2] : 1;
  std::int64_t column = 0;
  for (std::int64_t kd = 0; kd < g.kernel[0]; ++kd) {
    for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
      for (std::int64_t kw = 0; kw < g.kernel[2]; kw += taps_per_run, column += taps_per_run * cg) {
        visit(origin.tap_offset(g, kd, kh, kw), column, taps_per_run * cg);
      }
    }
  }
}
template <class Visit>
void for_each_run(const ConvGeometry& g, std::int64_t p, Visit&& visit) {
  for_each_run(g, PixelOrigin::of(g, p), visit);
}

// Group `group`'s column matrix (P x prod(K) * Cg) as a GEMM A operand that is never materialised:
// packing a panel of MR output pixels gathers the channels each pixel reads straight into the panel with
// the kernel's packer. Without groups and dilation along W, the kW taps of one (kd, kh) row read one
// contiguous run of kW * C values of x, so a panel whose pixels all lie clear of the W padding is packed
// a whole tap row at a time: long runs keep the packer on its vector path even for 3 or 6 channels.
//
// The packer is called once per panel and tap run, so what it costs to find a run's source counts where
// runs are short (7x7 stem: 21 values) or the GEMM narrow (conv3d: each packed value feeds only two
// microkernel calls). Pixels are therefore stepped from one to the next without divisions, and a pixel
// whose taps all read inside x (most of them) finds each tap at a fixed delta from its first.
template <class T>
class Im2colA final : public PackSourceA<T> {
 public:
  Im2colA(const ConvGeometry& g, const T* x, std::int64_t group, std::int64_t pixels)
      : PackSourceA<T>(pixels, g.kernel[0] * g.kernel[1] * g.kernel[2] * (g.in_channels / g.groups)),
        g_(g), x_(x + group * (g.in_channels / g.groups)) {
    taps_.reserve(static_cast<std::size_t>(g.kernel[0] * g.kernel[1] * g.kernel[2]));
    for (std::int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (std::int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const std::int64_t delta =
              ((kd * g.dilation[0] * g.in[1] + kh * g.dilation[1]) * g.in[2] + kw * g.dilation[2]) * g.in_channels;
          taps_.push_back({delta, kd, kh, kw});
        }
      }
    }
  }

  void pack(std::int64_t i0, std::int64_t p0, std::int64_t mc, std::int64_t kc, const GemmUkernel<T>& uk, T alpha,
            T* dst) const noexcept override {
    const int mr = uk.mr;
    PixelOrigin origin = PixelOrigin::of(g_, i0);
    for (std::int64_t i = 0; i < mc; i += mr, dst += mr * kc) {
      const int rows = static_cast<int>(std::min<std::int64_t>(mr, mc - i));
      PixelOrigin origins[kMaxKernelRows];
      std::int64_t interior_offset[kMaxKernelRows];  // -1: the pixel reads padding somewhere
      bool clear_of_w_padding = true;
      for (int r = 0; r < rows; ++r, origin.advance(g_)) {
        origins[r] = origin;
        interior_offset[r] = origin.interior(g_) ? origin.interior_offset(g_) : -1;
        clear_of_w_padding = clear_of_w_padding && taps_contiguous_along_w(g_, origin);
      }
      const std::int64_t run = clear_of_w_padding ? g_.kernel[2] * g_.in_channels : g_.in_channels / g_.groups;
      for (std::int64_t seg = p0 / run; seg * run < p0 + kc; ++seg) {  // a tap row, or a single tap
        const std::int64_t tap = clear_of_w_padding ? seg * g_.kernel[2] : seg;
        const std::int64_t c0 = std::max(p0, seg * run) - seg * run, c1 = std::min(p0 + kc, (seg + 1) * run) - seg * run;
        const T* row_ptrs[kMaxKernelRows];
        for (int r = 0; r < mr; ++r) {
          const std::int64_t offset = r >= rows                 ? -1
                                      : interior_offset[r] >= 0 ? interior_offset[r] + taps_[tap].delta
                                                                : origins[r].tap_offset(g_, taps_[tap].kd, taps_[tap].kh,
                                                                                        taps_[tap].kw);
          row_ptrs[r] = offset < 0 ? nullptr : x_ + offset + c0;
        }
        uk.pack_a_rows(kc, seg * run + c0 - p0, c1 - c0, row_ptrs, alpha, dst);
      }
    }
  }

 private:
  struct Tap {
    std::int64_t delta;  // an interior pixel's tap reads x_[its interior_offset + delta]
    std::int64_t kd, kh, kw;
  };

  ConvGeometry g_;
  const T* x_;
  std::vector<Tap> taps_;  // in column order
};

// Group `group`'s column matrix as a GEMM B operand, for backward weights (dw_g^T = dy_g^T @ cols_g), that
// is never materialised either: each pixel's row is gathered into a small buffer in L1 and dealt out to
// the NR-column panels from there. (The column tile this replaces, ~1 MiB, was written to and read back
// from L2/L3; copying each run straight into the panels, cut at their boundaries, cost more in short
// copies than it saved.)
template <class T>
class Im2colB final : public PackSourceB<T> {
 public:
  // Rows [first_pixel, first_pixel + pixels) of the column matrix.
  Im2colB(const ConvGeometry& g, const T* x, std::int64_t group, std::int64_t first_pixel, std::int64_t pixels)
      : PackSourceB<T>(pixels, g.kernel[0] * g.kernel[1] * g.kernel[2] * (g.in_channels / g.groups)),
        g_(g), x_(x + group * (g.in_channels / g.groups)), first_pixel_(first_pixel) {}

  void pack(std::int64_t p0, std::int64_t j0, std::int64_t kc, std::int64_t nc, int nr,
            T* dst) const noexcept override {
    switch (nr) {  // the deal's copies unrolled for the kernels' tile widths
      case 16: return pack_with<16>(p0, j0, kc, nc, dst);
      case 8: return pack_with<8>(p0, j0, kc, nc, dst);
      case 4: return pack_with<4>(p0, j0, kc, nc, dst);
      default: return pack_with<0>(p0, j0, kc, nc, dst, nr);
    }
  }

 private:
  // A pixel's columns are gathered run by run into a buffer that stays in L1 (long copies), then dealt
  // out NR at a time (`NR` = 0: the width `nr` known at run time only).
  static constexpr std::int64_t kRowBufferElements = 1024;

  template <int NR>
  void pack_with(std::int64_t p0, std::int64_t j0, std::int64_t kc, std::int64_t nc, T* dst, int nr = NR) const noexcept {
    const std::int64_t panel_size = kc * nr, j1 = j0 + nc;
    const std::int64_t chunk = kRowBufferElements / nr * nr;  // whole panels, so that chunks keep panel bounds
    T gathered[kRowBufferElements];
    PixelOrigin origin = PixelOrigin::of(g_, first_pixel_ + p0);
    for (std::int64_t p = 0; p < kc; ++p, origin.advance(g_)) {
      T* panel_row = dst + p * nr;  // row p of the first panel
      for (std::int64_t c0 = j0; c0 < j1; c0 += chunk) {
        const std::int64_t c1 = std::min(j1, c0 + chunk);
        for_each_run(g_, origin, [&](std::int64_t offset, std::int64_t column, std::int64_t length) {
          const std::int64_t lo = std::max(column, c0), hi = std::min(column + length, c1);
          if (lo >= hi) return;
          if (offset < 0) {
            std::fill(gathered + (lo - c0), gathered + (hi - c0), T(0));
          } else {
            std::copy(x_ + offset + (lo - column), x_ + offset + (hi - column), gathered + (lo - c0));
          }
        });
        for (std::int64_t j = c0; j < c1; j += nr, panel_row += panel_size) {
          const T* src = gathered + (j - c0);
          if (NR > 0 && j + NR <= c1) {
            for (int c = 0; c < NR; ++c) panel_row[c] = src[c];
          } else {
            const std::int64_t width = std::min<std::int64_t>(nr, c1 - j);
            std::copy(src, src + width, panel_row);
            std::fill(panel_row + width, panel_row + nr, T(0));
          }
        }
      }
    }
  }

  ConvGeometry g_;
  const T* x_;
  std::int64_t first_pixel_;
};

// Rows [p0, p1) of group `group`'s column matrix into cols (row length prod(K) * Cg, contiguous).
template <class T>
void im2col_rows(const ConvGeometry& g, const T* x, std::int64_t group, std::int64_t p0, std::int64_t p1, T* cols) {
  const std::int64_t cg = g.in_channels / g.groups;
  const std::int64_t row_len = g.kernel[0] * g.kernel[1] * g.kernel[2] * cg;
  const T* xg = x + group * cg;
  for (std::int64_t p = p0; p < p1; ++p) {
    T* row = cols + (p - p0) * row_len;
    for_each_run(g, p, [&](std::int64_t offset, std::int64_t column, std::int64_t length) {
      if (offset < 0) {
        std::fill(row + column, row + column + length, T(0));
      } else {
        std::copy(xg + offset, xg + offset + length, row + column);
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
    for_each_run(g, p, [&](std::int64_t offset, std::int64_t column, std::int64_t length) {
      if (offset < 0) return;
      T* dst = dxg + offset;
      const T* src = row + column;
      for (std::int64_t c = 0; c < length; ++c) dst[c] += src[c];
    });
  }
}

}  // namespace convkit
