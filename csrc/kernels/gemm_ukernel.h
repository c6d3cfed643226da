// The GEMM microkernel contract (BLIS style).
//
//   C[0:MR, 0:NR] = A_panel · B_panel + beta · C     (beta == 0: C is written, never read)
//
//   a: packed A micro-panel, kc steps of MR values (column p of the tile's rows, contiguous)
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

// Its packing companion: one MR-row micro-panel of A from MR row pointers (each row contiguous over
// p < kc; a null pointer is a row of zeros, for padding and for the rows beyond the matrix):
// dst[p * MR + r] = alpha * rows[r][p]. Row pointers, not a stride, so that convolution can gather the
// input pixels of MR output pixels straight into the panel (ops/conv.cc) without an im2col buffer.
template <class T>
using GemmPackAFn = void (*)(std::int64_t kc, const T* const* rows, T alpha, T* dst) noexcept;

template <class T>
struct GemmUkernel {
  const char* name;  // dtype-family-tile-isa, e.g. "f32-gemm-6x16-avx2"
  Isa isa;
  int mr, nr;                // register tile
  std::int64_t mc, kc, nc;   // cache blocking: A block mc x kc stays in L2, B panel kc x nc in L3
  GemmUkernelFn<T> run;
  GemmPackAFn<T> pack_a_rows;
};

// The kernels the registry knows (csrc/kernels/registry.cc lists them, best first).
extern const GemmUkernel<float> f32_gemm_4x8_ref;
extern const GemmUkernel<double> f64_gemm_4x4_ref;
#if CONVKIT_HAVE_AVX2
extern const GemmUkernel<float> f32_gemm_6x16_avx2;
extern const GemmUkernel<double> f64_gemm_6x8_avx2;
#endif

}  // namespace convkit
