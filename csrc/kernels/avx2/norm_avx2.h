// The AVX2 norm kernel: the column reductions of norm_columns_avx2.h, the short-row kernels of
// norm_short_rows_avx2.h, and the row loops of kernels/norm_rows.h, which the compiler vectorises well.
#pragma once
#include "kernels/avx2/norm_columns_avx2.h"
#include "kernels/avx2/norm_short_rows_avx2.h"
#include "kernels/norm_rows.h"

namespace convkit::avx2 {

template <class T>
constexpr NormUkernel<T> norm_kernel(const char* name) {
  NormUkernel<T> kernel = norm_rows::kernel<Isa::avx2_fma, T>(name);
  kernel.block_sums = &block_sums<T>;
  kernel.gradient_sums = &gradient_sums<T>;
  kernel.short_rows_forward = &short_rows::forward<T>;
  kernel.short_rows_backward = &short_rows::backward<T>;
  return kernel;
}

}  // namespace convkit::avx2
