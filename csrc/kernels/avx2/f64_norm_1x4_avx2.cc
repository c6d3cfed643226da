#include "kernels/norm_rows.h"

namespace convkit {
const NormUkernel<double> f64_norm_1x4_avx2 = norm_rows::kernel<Isa::avx2_fma, double>("f64-norm-1x4-avx2");
}  // namespace convkit
