#include "bench/executable/options.h"

#include <stdexcept>

namespace convkit::bench {

const char* const kUsage =
    "usage: convkit-bench [--threads N] [--repeats N] [--quick] [--filter TEXT[,TEXT...]]\n"
    "                     [--kernel NAME[,NAME...]] [--csv | --json] [--list]\n"
    "\n"
    "Times convkit's kernels in C++, without Python: GEMM, im2col, convolution forward/dx/dw per layer of the\n"
    "conv suite, depthwise, max and average pooling, BatchNorm. Each case: one warm-up call, then the median of\n"
    "--repeats calls. GFLOP/s are rated against the FP32 FMA peak and GB/s against a copy of the input's size,\n"
    "both measured in the same run. The table goes to stdout, progress to stderr.\n"
    "\n"
    "  --threads N     thread count for every kernel and both roofs (default 2)\n"
    "  --repeats N     timed calls per case after one warm-up (default 7; 2 with --quick)\n"
    "  --quick         tiny shapes: a smoke test of every case in seconds\n"
    "  --filter TEXT   only the cases whose name or problem contains one of the comma-separated texts\n"
    "  --kernel NAME   select kernels first (comma-separated names, or ref for every reference kernel)\n"
    "  --csv, --json   machine-readable output instead of a Markdown table (--csv: the description to stderr)\n"
    "  --list          print the case names and exit\n";

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::string::size_type start = 0;
  while (start <= text.size()) {
    const std::string::size_type comma = std::min(text.find(',', start), text.size());
    if (comma > start) parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

int positive_int(const std::string& option, const std::string& value) {
  std::size_t used = 0;
  long parsed = 0;
  try {
    parsed = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || parsed < 1 || parsed > 1'000'000) {
    throw std::invalid_argument(option + " must be a positive integer, got '" + value + "'");
  }
  return static_cast<int>(parsed);
}

}  // namespace

Options parse_options(int argc, const char* const* argv) {
  Options options;
  bool repeats_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--threads") {
      options.threads = positive_int(arg, value());
    } else if (arg == "--repeats") {
      options.repeats = positive_int(arg, value()), repeats_given = true;
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--filter") {
      options.filters = split_commas(value());
      if (options.filters.empty()) throw std::invalid_argument("--filter needs at least one text");
    } else if (arg == "--kernel") {
      options.kernels = split_commas(value());
    } else if (arg == "--csv") {
      options.format = Format::csv;
    } else if (arg == "--json") {
      options.format = Format::json;
    } else if (arg == "--list") {
      options.list = true;
    } else if (arg == "-h" || arg == "--help") {
      options.help = true;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  if (options.quick && !repeats_given) options.repeats = 2;
  return options;
}

}  // namespace convkit::bench
