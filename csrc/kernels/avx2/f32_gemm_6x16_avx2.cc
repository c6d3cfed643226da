#include <algorithm>

#include "kernels/avx2/gemm_6x2v_avx2.h"
#include "kernels/gemm_ukernel.h"

namespace convkit {
namespace {

// Columns [p0, p0 + len) of a 6-row panel laid out by row: each row's run is copied 8 floats at a time. A
// last chunk of m < 8 is read with a masked load (nothing past the run is touched) and stored whole where
// the row has room for 8 (the extra lanes fall on columns the caller packs later), masked only at the
// row's end (vmaskmov stores are slow on AMD cores, so not on every run).
void pack_a_6rows_f32(std::int64_t kc, std::int64_t p0, std::int64_t len, const float* const* rows, float alpha,
                      float* panel) noexcept {
  const __m256 scale = _mm256_set1_ps(alpha);
  const bool scaled = alpha != 1.0f;  // convolution always packs with alpha = 1: skip the multiplies
  const std::int64_t tail = len % 8, full = len - tail;
  const __m256i tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(tail)),
                                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const bool tail_fits = p0 + full + 8 <= kc;
  for (int r = 0; r < 6; ++r) {
    const float* src = rows[r];
    float* dst = panel + r * kc + p0;
    for (std::int64_t p = 0; p < full; p += 8) {
      __m256 v = src ? _mm256_loadu_ps(src + p) : _mm256_setzero_ps();
      if (scaled) v = _mm256_mul_ps(scale, v);
      _mm256_storeu_ps(dst + p, v);
    }
    if (tail == 0) continue;
    __m256 v = src ? _mm256_maskload_ps(src + full, tail_mask) : _mm256_setzero_ps();
    if (scaled) v = _mm256_mul_ps(scale, v);
    if (tail_fits) {
      _mm256_storeu_ps(dst + full, v);
    } else {
      _mm256_maskstore_ps(dst + full, tail_mask, v);
    }
  }
}

}  // namespace

// Blocking for Zen 3 (L1d 32 KiB, L2 512 KiB): B micro-panel 256x16 floats = 16 KiB in L1,
// A block 144x256 floats = 144 KiB in L2, B panel 256x4080 floats = 4 MiB in L3.
const GemmUkernel<float> f32_gemm_6x16_avx2 = {"f32-gemm-6x16-avx2", Isa::avx2_fma, 6, 16, 144, 256, 4080,
                                               avx2::gemm_ukernel_6x2v<avx2::F32x8, true>, pack_a_6rows_f32,
                                               PanelLayout::by_row};
}  // namespace convkit
