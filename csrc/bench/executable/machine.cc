#include "bench/executable/machine.h"

#include <sys/utsname.h>

#include <ctime>
#include <fstream>
#include <string>

#include "core/cpu_features.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit::bench {
namespace {

// /proc/cpuinfo's "model name" (x86) or "Model"/"Hardware" (Arm boards); else the machine type.
std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    for (const char* key : {"model name", "Model", "Hardware"}) {
      if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos) {
        const std::string value = line.substr(line.find(':') + 1);
        const std::size_t start = value.find_first_not_of(" \t");
        if (start != std::string::npos) return value.substr(start);
      }
    }
  }
  utsname names{};
  return uname(&names) == 0 ? names.machine : "unknown";
}

// The 1, 5 and 15 minute load averages: other jobs on the machine slow a multi-threaded kernel down.
std::string load_average() {
  std::ifstream loadavg("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(loadavg >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string selected_kernels() {
  std::string names;
  for (const KernelInfo& k : list_kernels()) {
    if (k.selected) names += (names.empty() ? "" : ", ") + k.name;
  }
  return names;
}

}  // namespace

std::vector<Field> describe_machine(const Options& options) {
  return {
      {"convkit", CONVKIT_VERSION},
      {"date", utc_now()},
      {"cpu", cpu_model()},
      {"cores", std::to_string(hardware_threads()), true},
      {"isa", cpu_feature_summary()},
      {"compiler", compiler()},
      {"openmp", openmp_enabled() ? "yes" : "no"},
      {"threads", std::to_string(num_threads()), true},
      {"repeats", std::to_string(options.repeats), true},
      {"quick", options.quick ? "true" : "false", true},
      {"load average", load_average()},
      {"kernels", selected_kernels()},
  };
}

}  // namespace convkit::bench
