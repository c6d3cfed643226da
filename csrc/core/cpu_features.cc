#include "core/cpu_features.h"

namespace convkit {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::avx2_fma: return "avx2";
  }
  return "?";
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::ref: return true;
    case Isa::avx2_fma:
#if CONVKIT_HAVE_AVX2 && (defined(__GNUC__) || defined(__clang__))
      // libgcc's probe also checks that the OS saves the YMM state (XGETBV), not just the CPUID bits.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
  }
  return false;
}

std::string cpu_feature_summary() {
  std::string out;
#if CONVKIT_HAVE_AVX2 && (defined(__GNUC__) || defined(__clang__))
  const char* names[] = {"sse4.2", "avx", "avx2", "fma", "avx512f"};
  bool present[] = {bool(__builtin_cpu_supports("sse4.2")), bool(__builtin_cpu_supports("avx")),
                    bool(__builtin_cpu_supports("avx2")), bool(__builtin_cpu_supports("fma")),
                    bool(__builtin_cpu_supports("avx512f"))};
  for (int i = 0; i < 5; ++i) {
    if (!present[i]) continue;
    if (!out.empty()) out += ' ';
    out += names[i];
  }
#endif
  return out.empty() ? "none detected" : out;
}

}  // namespace convkit
