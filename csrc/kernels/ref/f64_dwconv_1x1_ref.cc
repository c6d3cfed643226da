#include "kernels/dwconv_ukernel.h"
#include "kernels/ref/dwconv_ref.h"

namespace convkit {
const DwconvUkernel<double> f64_dwconv_1x1_ref = dwconv_ref_kernel<double>("f64-dwconv-1x1-ref");

template <>
const DwconvUkernel<double>& dwconv_reference_ukernel<double>() {
  return f64_dwconv_1x1_ref;
}
}  // namespace convkit
