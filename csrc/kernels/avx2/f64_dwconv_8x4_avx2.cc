#include "kernels/avx2/dwconv_avx2.h"
#include "kernels/dwconv_ukernel.h"

namespace convkit {
const DwconvUkernel<double> f64_dwconv_8x4_avx2 = avx2::dwconv_kernel<avx2::F64x4>("f64-dwconv-8x4-avx2");
}  // namespace convkit
