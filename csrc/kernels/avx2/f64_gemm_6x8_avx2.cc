#include "kernels/avx2/gemm_6x2v_avx2.h"
#include "kernels/gemm_ukernel.h"
#include "kernels/ref/gemm_ref.h"

namespace convkit {
const GemmUkernel<double> f64_gemm_6x8_avx2 = {"f64-gemm-6x8-avx2", Isa::avx2_fma, 6, 8, 72, 256, 4080,
                                               avx2::gemm_ukernel_6x2v<avx2::F64x4>,
                                               pack_a_rows_ref<double, 6>, PanelLayout::by_column};
}  // namespace convkit
