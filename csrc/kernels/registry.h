// Which kernel runs each op family. Each family lists its kernels best first; at import the first one
// this CPU can run is selected (the BLIS pattern: the reference always works, faster kernels override it).
// Tests and benchmarks iterate over list_kernels(), so a new kernel is one file plus one line in
// registry.cc.
#pragma once
#include <string>
#include <vector>

#include "kernels/dconv_ukernel.h"
#include "kernels/dwconv_ukernel.h"
#include "kernels/exp_ukernel.h"
#include "kernels/gemm_ukernel.h"
#include "kernels/norm_ukernel.h"
#include "kernels/pool_ukernel.h"

namespace convkit {

struct KernelInfo {
  std::string name, family, dtype, isa;
  bool available;  // this CPU can run it
  bool selected;   // it is the one ops use now
};

std::vector<KernelInfo> list_kernels();

// Makes `name` the kernel of its family; throws std::invalid_argument if the name is unknown or this CPU
// cannot run it. "ref" selects the reference kernel of every family.
void select_kernel(const std::string& name);

template <class T>
const GemmUkernel<T>& selected_gemm_ukernel();
template <class T>
const DwconvUkernel<T>& selected_dwconv_ukernel();
template <class T>
const DconvUkernel<T>& selected_dconv_ukernel();
template <class T>
const NormUkernel<T>& selected_norm_ukernel();
template <class T>
const PoolUkernel<T>& selected_pool_ukernel();
const ExpUkernel& selected_exp_ukernel();

}  // namespace convkit
