#include "kernels/norm_rows.h"

namespace convkit {
const NormUkernel<double> f64_norm_1x1_ref = norm_rows::kernel<Isa::ref, double>("f64-norm-1x1-ref");
}  // namespace convkit
