#include "kernels/norm_rows.h"

namespace convkit {
const NormUkernel<float> f32_norm_1x4_avx2 = norm_rows::kernel<Isa::avx2_fma, float>("f32-norm-1x4-avx2");
}  // namespace convkit
