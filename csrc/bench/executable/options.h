// Command-line options of the convkit-bench executable.
#pragma once
#include <string>
#include <vector>

namespace convkit::bench {

enum class Format { markdown, csv, json };

struct Options {
  int threads = 2;
  int repeats = 7;  // timed calls per case after one warm-up; the median is reported
  bool quick = false;
  bool list = false;  // print the case names and exit
  bool help = false;
  Format format = Format::markdown;
  std::vector<std::string> filters;  // a case runs when its name or problem contains one of them
  std::vector<std::string> kernels;  // kernels to select before timing ("ref": every reference kernel)
};

// Throws std::invalid_argument, naming the option and the value, on anything it does not understand.
Options parse_options(int argc, const char* const* argv);

extern const char* const kUsage;

}  // namespace convkit::bench
