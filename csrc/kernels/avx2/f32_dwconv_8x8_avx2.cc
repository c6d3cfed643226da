#include "kernels/avx2/dwconv_avx2.h"
#include "kernels/dwconv_ukernel.h"

namespace convkit {
const DwconvUkernel<float> f32_dwconv_8x8_avx2 = avx2::dwconv_kernel<avx2::F32x8>("f32-dwconv-8x8-avx2");
}  // namespace convkit
