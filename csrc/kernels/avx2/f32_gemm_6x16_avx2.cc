#include <algorithm>

#include "kernels/avx2/gemm_6x2v_avx2.h"
#include "kernels/gemm_ukernel.h"

namespace convkit {
namespace {

// 8 columns of 6 rows (plus 2 zero rows) -> 8 panel columns of 6, by an 8x8 register transpose.
void transpose_6x8(const __m256 (&r)[8], __m256 (&column)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  column[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  column[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  column[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  column[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  column[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  column[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  column[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  column[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Packs 6 rows, 8 columns at a time; a last chunk of m < 8 columns is read with masked loads (nothing
// past the row's end is touched), so short runs (3 or 6 channels) stay on the vector path. A column store
// writes 8 floats where the panel has 6, spilling 2 into the next column's slots before that column's
// own store overwrites them; a chunk's last column is stored as 4 + 2 instead.
void pack_a_6rows_f32(std::int64_t kc, const float* const* rows, float alpha, float* dst) noexcept {
  const __m256 scale = _mm256_set1_ps(alpha);
  const bool scaled = alpha != 1.0f;  // convolution always packs with alpha = 1: skip six multiplies
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (std::int64_t p = 0; p < kc; p += 8, dst += 48) {
    const int m = static_cast<int>(std::min<std::int64_t>(8, kc - p));
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), lane);
    __m256 r[8];
    for (int i = 0; i < 8; ++i) {
      if (i >= 6 || rows[i] == nullptr) {
        r[i] = _mm256_setzero_ps();
      } else {
        r[i] = m == 8 ? _mm256_loadu_ps(rows[i] + p) : _mm256_maskload_ps(rows[i] + p, mask);
        if (scaled) r[i] = _mm256_mul_ps(scale, r[i]);
      }
    }
    __m256 column[8];
    transpose_6x8(r, column);
    for (int j = 0; j + 1 < m; ++j) _mm256_storeu_ps(dst + 6 * j, column[j]);
    _mm_storeu_ps(dst + 6 * (m - 1), _mm256_castps256_ps128(column[m - 1]));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + 6 * (m - 1) + 4), _mm256_extractf128_ps(column[m - 1], 1));
  }
}

}  // namespace

// Blocking for Zen 3 (L1d 32 KiB, L2 512 KiB): B micro-panel 256x16 floats = 16 KiB in L1,
// A block 144x256 floats = 144 KiB in L2, B panel 256x4080 floats = 4 MiB in L3.
const GemmUkernel<float> f32_gemm_6x16_avx2 = {"f32-gemm-6x16-avx2", Isa::avx2_fma, 6, 16, 144, 256, 4080,
                                               avx2::gemm_ukernel_6x2v<avx2::F32x8>, pack_a_6rows_f32};
}  // namespace convkit
