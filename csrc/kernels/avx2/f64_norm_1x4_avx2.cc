#include "kernels/avx2/norm_avx2.h"

namespace convkit {
const NormUkernel<double> f64_norm_1x4_avx2 = avx2::norm_kernel<double>("f64-norm-1x4-avx2");
}  // namespace convkit
