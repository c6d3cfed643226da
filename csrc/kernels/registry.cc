#include "kernels/registry.h"

#include <atomic>
#include <stdexcept>

#include "core/dtype.h"

namespace convkit {
namespace {

class KernelFamilyBase {
 public:
  virtual ~KernelFamilyBase() = default;
  virtual bool select(const std::string& name) = 0;  // false: not a kernel of this family
  virtual void select_reference() = 0;
  virtual void describe(std::vector<KernelInfo>& out) const = 0;
};

template <class Kernel>
class KernelFamily final : public KernelFamilyBase {
 public:
  KernelFamily(const char* family, const char* dtype, std::vector<const Kernel*> best_first)
      : family_(family), dtype_(dtype), kernels_(std::move(best_first)) {
    for (const Kernel* k : kernels_) {
      if (cpu_supports(k->isa)) {
        selected_.store(k);
        break;
      }
    }
  }

  const Kernel& selected() const { return *selected_.load(std::memory_order_acquire); }

  bool select(const std::string& name) override {
    for (const Kernel* k : kernels_) {
      if (name != k->name) continue;
      if (!cpu_supports(k->isa)) {
        throw std::invalid_argument("kernel '" + name + "' needs " + isa_name(k->isa) +
                                    ", which this CPU does not support");
      }
      selected_.store(k, std::memory_order_release);
      return true;
    }
    return false;
  }

  void select_reference() override {
    for (const Kernel* k : kernels_) {
      if (k->isa == Isa::ref) selected_.store(k, std::memory_order_release);
    }
  }

  void describe(std::vector<KernelInfo>& out) const override {
    for (const Kernel* k : kernels_) {
      out.push_back({k->name, family_, dtype_, isa_name(k->isa), cpu_supports(k->isa), k == &selected()});
    }
  }

 private:
  const char* family_;
  const char* dtype_;
  std::vector<const Kernel*> kernels_;
  std::atomic<const Kernel*> selected_{nullptr};
};

// ---- registration: one line per kernel, best first ------------------------------------------------
// family<Kernel>() is the family of one op and dtype; each specialisation lists its kernels.
template <class Kernel>
KernelFamily<Kernel>& family();

template <>
KernelFamily<GemmUkernel<float>>& family() {
  static KernelFamily<GemmUkernel<float>> family("gemm", dtype_name<float>(), {
#if CONVKIT_HAVE_AVX2
                                                                                  &f32_gemm_6x16_avx2,
#endif
                                                                                  &f32_gemm_4x8_ref});
  return family;
}

template <>
KernelFamily<GemmUkernel<double>>& family() {
  static KernelFamily<GemmUkernel<double>> family("gemm", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                                    &f64_gemm_6x8_avx2,
#endif
                                                                                    &f64_gemm_4x4_ref});
  return family;
}

template <>
KernelFamily<DwconvUkernel<float>>& family() {
  static KernelFamily<DwconvUkernel<float>> family("dwconv", dtype_name<float>(), {
#if CONVKIT_HAVE_AVX2
                                                                                      &f32_dwconv_8x8_avx2,
#endif
                                                                                      &f32_dwconv_1x1_ref});
  return family;
}

template <>
KernelFamily<DwconvUkernel<double>>& family() {
  static KernelFamily<DwconvUkernel<double>> family("dwconv", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                                        &f64_dwconv_8x4_avx2,
#endif
                                                                                        &f64_dwconv_1x1_ref});
  return family;
}

template <>
KernelFamily<DconvUkernel<float>>& family() {
  static KernelFamily<DconvUkernel<float>> family("dconv", dtype_name<float>(), {
#if CONVKIT_HAVE_AVX2
                                                                                    &f32_dconv_6x16_avx2,
#endif
                                                                                    &f32_dconv_1x1_ref});
  return family;
}

template <>
KernelFamily<DconvUkernel<double>>& family() {
  static KernelFamily<DconvUkernel<double>> family("dconv", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                                      &f64_dconv_6x8_avx2,
#endif
                                                                                      &f64_dconv_1x1_ref});
  return family;
}

template <>
KernelFamily<NormUkernel<float>>& family() {
  static KernelFamily<NormUkernel<float>> family("norm", dtype_name<float>(), {
#if CONVKIT_HAVE_AVX2
                                                                                  &f32_norm_1x4_avx2,
#endif
                                                                                  &f32_norm_1x1_ref});
  return family;
}

template <>
KernelFamily<PoolUkernel<float>>& family() {
  static KernelFamily<PoolUkernel<float>> family("pool", dtype_name<float>(), {
#if CONVKIT_HAVE_AVX2
                                                                                  &f32_pool_1x8_avx2,
#endif
                                                                                  &f32_pool_1x1_ref});
  return family;
}

template <>
KernelFamily<NormUkernel<double>>& family() {
  static KernelFamily<NormUkernel<double>> family("norm", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                                    &f64_norm_1x4_avx2,
#endif
                                                                                    &f64_norm_1x1_ref});
  return family;
}

template <>
KernelFamily<PoolUkernel<double>>& family() {
  static KernelFamily<PoolUkernel<double>> family("pool", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                                    &f64_pool_1x4_avx2,
#endif
                                                                                    &f64_pool_1x1_ref});
  return family;
}

template <>
KernelFamily<ExpUkernel>& family() {
  static KernelFamily<ExpUkernel> family("exp", dtype_name<double>(), {
#if CONVKIT_HAVE_AVX2
                                                                          &f64_exp_1x4_avx2,
#endif
                                                                          &f64_exp_1x1_ref});
  return family;
}

std::vector<KernelFamilyBase*> all_families() {
  return {&family<GemmUkernel<float>>(),   &family<GemmUkernel<double>>(), &family<DwconvUkernel<float>>(),
          &family<DwconvUkernel<double>>(), &family<DconvUkernel<float>>(),
          &family<DconvUkernel<double>>(),  &family<NormUkernel<float>>(),  &family<NormUkernel<double>>(),
          &family<PoolUkernel<float>>(),    &family<PoolUkernel<double>>(), &family<ExpUkernel>()};
}

}  // namespace

std::vector<KernelInfo> list_kernels() {
  std::vector<KernelInfo> out;
  for (KernelFamilyBase* family : all_families()) family->describe(out);
  return out;
}

void select_kernel(const std::string& name) {
  if (name == "ref") {
    for (KernelFamilyBase* family : all_families()) family->select_reference();
    return;
  }
  for (KernelFamilyBase* family : all_families()) {
    if (family->select(name)) return;
  }
  std::string known;
  for (const KernelInfo& k : list_kernels()) known += (known.empty() ? "" : ", ") + k.name;
  throw std::invalid_argument("unknown kernel '" + name + "'; known kernels: ref, " + known);
}

template <class T>
const GemmUkernel<T>& selected_gemm_ukernel() {
  return family<GemmUkernel<T>>().selected();
}
template <class T>
const DwconvUkernel<T>& selected_dwconv_ukernel() {
  return family<DwconvUkernel<T>>().selected();
}
template <class T>
const DconvUkernel<T>& selected_dconv_ukernel() {
  return family<DconvUkernel<T>>().selected();
}
template <class T>
const NormUkernel<T>& selected_norm_ukernel() {
  return family<NormUkernel<T>>().selected();
}
template <class T>
const PoolUkernel<T>& selected_pool_ukernel() {
  return family<PoolUkernel<T>>().selected();
}
const ExpUkernel& selected_exp_ukernel() { return family<ExpUkernel>().selected(); }
template const GemmUkernel<float>& selected_gemm_ukernel<float>();
template const GemmUkernel<double>& selected_gemm_ukernel<double>();
template const DwconvUkernel<float>& selected_dwconv_ukernel<float>();
template const DwconvUkernel<double>& selected_dwconv_ukernel<double>();
template const DconvUkernel<float>& selected_dconv_ukernel<float>();
template const DconvUkernel<double>& selected_dconv_ukernel<double>();
template const NormUkernel<float>& selected_norm_ukernel<float>();
template const NormUkernel<double>& selected_norm_ukernel<double>();
template const PoolUkernel<float>& selected_pool_ukernel<float>();
template const PoolUkernel<double>& selected_pool_ukernel<double>();

}  // namespace convkit
