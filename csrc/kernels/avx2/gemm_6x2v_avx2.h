// AVX2/FMA GEMM microkernel: a 6 x (2 vectors) tile, i.e. 6x16 for f32 and 6x8 for f64.
// Twelve accumulators, two B loads and one broadcast per row: 15 of the 16 ymm registers.
// Only included by translation units under kernels/avx2/, which are compiled with -mavx2 -mfma.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/avx2/simd_avx2.h"

namespace convkit::avx2 {

// kRowPanel: the A micro-panel is laid out by row (PanelLayout::by_row), row i at a + i * kc.
template <class S, bool kRowPanel = false>
void gemm_ukernel_6x2v(std::int64_t kc, const typename S::T* __restrict a, const typename S::T* __restrict b,
                       typename S::T* __restrict c, std::int64_t ldc, typename S::T beta) noexcept {
  using V = typename S::V;
  constexpr int MR = 6, L = S::lanes, NR = 2 * L;
  const std::int64_t row_step = kRowPanel ? kc : 1, p_step = kRowPanel ? 1 : MR;
  for (int i = 0; i < MR; ++i) {  // the tile is written at the end: start fetching it now
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
  V acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();

#pragma GCC unroll 4
  for (std::int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load_aligned(b), b1 = S::load_aligned(b + L);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const V ai = S::broadcast(a + i * row_step);
      acc[i][0] = S::fmadd(ai, b0, acc[i][0]);
      acc[i][1] = S::fmadd(ai, b1, acc[i][1]);
    }
    a += p_step;
    b += NR;
  }

  if (beta == 0) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      S::store(c + i * ldc, acc[i][0]);
      S::store(c + i * ldc + L, acc[i][1]);
    }
  } else {
    const V vbeta = S::broadcast(&beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      S::store(c + i * ldc, S::fmadd(vbeta, S::load(c + i * ldc), acc[i][0]));
      S::store(c + i * ldc + L, S::fmadd(vbeta, S::load(c + i * ldc + L), acc[i][1]));
    }
  }
}

}  // namespace convkit::avx2
