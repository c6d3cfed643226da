#include "kernels/gemm_ukernel.h"
#include "kernels/ref/gemm_ref.h"

namespace convkit {
const GemmUkernel<double> f64_gemm_4x4_ref = {"f64-gemm-4x4-ref", Isa::ref, 4, 4, 128, 256, 2048,
                                              gemm_ukernel_ref<double, 4, 4>, pack_a_rows_ref<double, 4>,
                                              PanelLayout::by_column};
}  // namespace convkit
