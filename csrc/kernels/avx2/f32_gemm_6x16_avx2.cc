#include "kernels/avx2/gemm_6x2v_avx2.h"
#include "kernels/gemm_ukernel.h"

namespace convkit {
// Blocking for Zen 3 (L1d 32 KiB, L2 512 KiB): B micro-panel 256x16 floats = 16 KiB in L1,
// A block 144x256 floats = 144 KiB in L2, B panel 256x4080 floats = 4 MiB in L3.
const GemmUkernel<float> f32_gemm_6x16_avx2 = {"f32-gemm-6x16-avx2", Isa::avx2_fma, 6, 16, 144, 256, 4080,
                                               avx2::gemm_ukernel_6x2v<avx2::F32x8>};
}  // namespace convkit
