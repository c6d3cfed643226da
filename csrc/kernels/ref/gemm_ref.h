// Readable reference GEMM microkernel: plain loops over an MR x NR accumulator tile. Compiled for the
// baseline ISA, it is the portable path (the compiler auto-vectorises the j loop) and the oracle the
// SIMD kernels are tested against.
#pragma once
#include <cstdint>

namespace convkit {

template <class T, int MR, int NR>
void gemm_ukernel_ref(std::int64_t kc, const T* a, const T* b, T* c, std::int64_t ldc, T beta) noexcept {
  T acc[MR][NR] = {};
  for (std::int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      for (int j = 0; j < NR; ++j) acc[i][j] += a[p * MR + i] * b[p * NR + j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      T& out = c[i * ldc + j];
      out = beta == T(0) ? acc[i][j] : acc[i][j] + beta * out;
    }
  }
}

// By-column packing (PanelLayout::by_column).
template <class T, int MR>
void pack_a_rows_ref(std::int64_t /*kc*/, std::int64_t p0, std::int64_t len, const T* const* rows, T alpha,
                     T* panel) noexcept {
  T* dst = panel + p0 * MR;
  for (int r = 0; r < MR; ++r) {
    const T* row = rows[r];
    for (std::int64_t p = 0; p < len; ++p) dst[p * MR + r] = row ? alpha * row[p] : T(0);
  }
}

}  // namespace convkit
