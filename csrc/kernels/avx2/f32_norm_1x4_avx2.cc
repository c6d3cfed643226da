#include "kernels/avx2/norm_avx2.h"

namespace convkit {
const NormUkernel<float> f32_norm_1x4_avx2 = avx2::norm_kernel<float>("f32-norm-1x4-avx2");
}  // namespace convkit
