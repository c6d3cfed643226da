#include "kernels/gemm_ukernel.h"
#include "kernels/ref/gemm_ref.h"

namespace convkit {
const GemmUkernel<float> f32_gemm_4x8_ref = {"f32-gemm-4x8-ref", Isa::ref, 4, 8, 128, 256, 4096,
                                             gemm_ukernel_ref<float, 4, 8>, pack_a_rows_ref<float, 4>,
                                             PanelLayout::by_column};
}  // namespace convkit
