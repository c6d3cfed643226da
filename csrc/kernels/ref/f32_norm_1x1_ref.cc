#include "kernels/norm_rows.h"

namespace convkit {
const NormUkernel<float> f32_norm_1x1_ref = norm_rows::kernel<Isa::ref, float>("f32-norm-1x1-ref");
}  // namespace convkit
