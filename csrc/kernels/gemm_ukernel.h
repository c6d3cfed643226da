// The GEMM microkernel contract (BLIS style).
//
//   C[0:MR, 0:NR] = A_panel · B_panel + beta · C     (beta == 0: C is written, never read)
//
//   a: packed A micro-panel of MR rows x kc columns, in the kernel's PanelLayout: by column (kc steps
//      of MR values) or by row (MR rows of kc values)
//   b: packed B micro-panel, kc steps of NR values (row p of the tile's columns, contiguous), 32-byte aligned
//   c: the C tile, row-major with row stride ldc and unit column stride
//
// Each C element is accumulated sequentially over p = 0..kc-1, so its value does not depend on how a
// driver splits the matrix between threads. No allocation, no threads, no shape logic: the driver
// (ops/gemm.cc) packs, blocks, handles edges and parallelises.
#pragma once
#include <cstdint>

#include "core/cpu_features.h"

namespace convkit {

template <class T>
using GemmUkernelFn = void (*)(std::int64_t kc, const T* a, const T* b, T* c, std::int64_t ldc,
                               T beta) noexcept;

// How a kernel wants its A micro-panel laid out. By column, a step p reads MR adjacent values, but packing
// transposes (an 8x8 register transpose per 48 values in AVX2); by row, packing is plain copies of each
// row's runs and the kernel broadcasts from MR row streams instead, which costs it nothing more: a
// broadcast from memory is a load either way. Where each packed value feeds few microkernel calls
// (conv3d: C_out = 32, two calls), the transposes were a fifth of the forward pass.
enum class PanelLayout { by_column, by_row };

// Where element (r, p) of an MR x kc micro-panel lives.
inline std::int64_t panel_index(PanelLayout layout, int mr, std::int64_t kc, int r, std::int64_t p) {
  return layout == PanelLayout::by_column ? p * mr + r : r * kc + p;
}

// Its packing companion: columns [p0, p0 + len) of one MR-row micro-panel kc columns deep, from MR row
// pointers (rows[r] points at row r's value for column p0, contiguous over len; a null pointer is a row
// of zeros, for padding and for the rows beyond the matrix): panel[panel_index(r, p0 + p)] = alpha *
// rows[r][p]. Row pointers, not a stride, so that convolution can gather the input pixels of MR output
// pixels straight into the panel (ops/im2col.h) without an im2col buffer; a column range, so that it can
// do so one contiguous run of x at a time. A packer may overwrite columns past p0 + len but never past
// kc: a caller packs a panel's column ranges in increasing order.
template <class T>
using GemmPackAFn = void (*)(std::int64_t kc, std::int64_t p0, std::int64_t len, const T* const* rows, T alpha,
                             T* panel) noexcept;

template <class T>
struct GemmUkernel {
  const char* name;  // dtype-family-tile-isa, e.g. "f32-gemm-6x16-avx2"
  Isa isa;
  int mr, nr;                // register tile
  std::int64_t mc, kc, nc;   // cache blocking: A block mc x kc stays in L2, B panel kc x nc in L3
  GemmUkernelFn<T> run;
  GemmPackAFn<T> pack_a_rows;
  PanelLayout a_layout;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const GemmUkernel<float> f32_gemm_4x8_ref;
extern const GemmUkernel<double> f64_gemm_4x4_ref;
#if CONVKIT_HAVE_AVX2
extern const GemmUkernel<float> f32_gemm_6x16_avx2;
extern const GemmUkernel<double> f64_gemm_6x8_avx2;
#endif

}  // namespace convkit
