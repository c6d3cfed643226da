// What the benchmark ran on: CPU, cores, ISA, compiler, OpenMP, selected kernels, load, settings.
#pragma once
#include <vector>

#include "bench/executable/options.h"
#include "bench/executable/report.h"

namespace convkit::bench {

std::vector<Field> describe_machine(const Options& options);

}  // namespace convkit::bench
