#include "kernels/dwconv_ukernel.h"
#include "kernels/ref/dwconv_ref.h"

namespace convkit {
const DwconvUkernel<float> f32_dwconv_1x1_ref = dwconv_ref_kernel<float>("f32-dwconv-1x1-ref");

template <>
const DwconvUkernel<float>& dwconv_reference_ukernel<float>() {
  return f32_dwconv_1x1_ref;
}
}  // namespace convkit
