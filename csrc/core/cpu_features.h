// Instruction sets a kernel may require, and whether this CPU (and its OS) can run them.
#pragma once
#include <string>

namespace convkit {

enum class Isa { ref, avx2_fma };

const char* isa_name(Isa isa);
bool cpu_supports(Isa isa);
// Space-separated list of the SIMD features convkit cares about, for show_config().
std::string cpu_feature_summary();

}  // namespace convkit
