// convkit-bench: times convkit's kernels without Python and rates them against roofs measured in the same
// run. Linked by setup.py from the object files of convkit._C (less the pybind11 bindings) plus the files of
// this folder, which the extension itself leaves out. `convkit-bench --help` lists the options.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/executable/machine.h"
#include "bench/executable/options.h"
#include "bench/executable/report.h"
#include "bench/executable/suite.h"
#include "bench/fma_peak.h"
#include "bench/stream_copy.h"
#include "core/threading.h"
#include "kernels/registry.h"

namespace convkit::bench {
namespace {

constexpr int kCopyRepeats = 11;
// Below about this size a copy on two threads times the OpenMP team's wake-up rather than bandwidth, and
// the ops themselves run such sizes on fewer threads: a smaller roof would flatter them.
constexpr std::int64_t kMinCopyBytes = std::int64_t{1} << 20;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string mebibytes(std::int64_t bytes) { return fixed(double(bytes) / (1 << 20), 1); }

// The roofs of one run: the FMA peak and a copy of each size the memory-bound cases are compared with.
// A roof is the best the machine showed, with --threads threads or with one, before the cases and again after
// them: on a loaded machine a team of two waits a whole time slice whenever one member is descheduled, and
// ops below a size threshold run on one thread, so a roof measured once, on the team alone, could flatter
// them (percentages in the thousands were seen). The cases report their median.
class Roofs {
 public:
  Roofs(int threads, const std::vector<std::int64_t>& copy_sizes) : threads_(threads) {
    for (std::int64_t bytes : copy_sizes) copy_gbps_[bytes] = 0;
  }

  void measure() {
    for (int team : {threads_, 1}) {
      peak_gflops_ = std::max(peak_gflops_, fma_peak_gflops(team));  // 0 on CPUs without the FMA loop
      for (auto& [bytes, gbps] : copy_gbps_) {
        const std::vector<double> seconds = time_stream_copy(bytes, team, kCopyRepeats);
        gbps = std::max(gbps, 2.0 * double(bytes) / *std::min_element(seconds.begin(), seconds.end()) / 1e9);
      }
      if (threads_ == 1) break;
    }
  }

  double peak_gflops() const { return peak_gflops_; }
  double copy_gbps(std::int64_t bytes) const { return copy_gbps_.at(bytes); }

 private:
  int threads_;
  double peak_gflops_ = 0;
  std::map<std::int64_t, double> copy_gbps_;  // by bytes copied (2 * bytes moved per copy)
};

std::int64_t copy_bytes(const Case& c) { return std::max(c.roof_bytes, kMinCopyBytes); }

bool selected(const Case& c, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  return std::any_of(filters.begin(), filters.end(), [&](const std::string& f) {
    return c.name.find(f) != std::string::npos || c.problem.find(f) != std::string::npos;
  });
}

Row to_row(const Case& c, const std::vector<double>& seconds, const Roofs& roofs) {
  const double typical = median(seconds);
  const double nan = std::nan("");
  Row row{c.name, c.problem, 1e3 * typical, 1e3 * *std::min_element(seconds.begin(), seconds.end()), nan, nan, nan, ""};
  if (c.bound == Bound::compute) {
    const double peak = roofs.peak_gflops();
    row.gflops = c.work / typical / 1e9;
    if (peak > 0) row.percent_of_roof = 100 * row.gflops / peak;
    row.roof = peak > 0 ? "FMA peak " + fixed(peak, 1) + " GFLOP/s" : "no FMA peak loop for this CPU";
  } else {
    const double roof = roofs.copy_gbps(copy_bytes(c));
    row.gbps = c.work / typical / 1e9;
    row.percent_of_roof = 100 * row.gbps / roof;
    row.roof = "copy " + mebibytes(copy_bytes(c)) + " MiB " + fixed(roof, 1) + " GB/s";
  }
  return row;
}

int run(const Options& options) {
  set_num_threads(options.threads);
  for (const std::string& name : options.kernels) select_kernel(name);
  std::vector<Case> cases;
  for (auto&& family : {compute_cases(options.quick), memory_cases(options.quick)}) {
    for (const Case& c : family) {
      if (selected(c, options.filters)) cases.push_back(c);
    }
  }
  if (options.list) {
    for (const Case& c : cases) std::printf("%s\t%s\n", c.name.c_str(), c.problem.c_str());
    return 0;
  }
  if (cases.empty()) throw std::invalid_argument("no case matches --filter; --list shows the names");

  const int threads = num_threads();  // 1 in a build without OpenMP, whatever --threads said
  std::vector<Field> machine = describe_machine(options);
  const std::int64_t dram_bytes = std::int64_t{options.quick ? 32 : 256} << 20;
  std::vector<std::int64_t> copy_sizes = {dram_bytes};
  for (const Case& c : cases) {
    if (c.bound == Bound::memory) copy_sizes.push_back(copy_bytes(c));
  }
  Roofs roofs(threads, copy_sizes);
  std::fprintf(stderr, "convkit-bench: measuring the roofs (FMA peak, copies) on %d thread(s) and on 1\n", threads);
  roofs.measure();

  std::vector<std::vector<double>> seconds;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    seconds.push_back(cases[i].time(options.repeats));
    std::fprintf(stderr, "[%zu/%zu] %s (%s): %.3f ms\n", i + 1, cases.size(), cases[i].name.c_str(),
                 cases[i].problem.c_str(), 1e3 * median(seconds.back()));
  }
  std::fprintf(stderr, "convkit-bench: measuring the roofs again\n");
  roofs.measure();
  std::vector<Row> rows;
  for (std::size_t i = 0; i < cases.size(); ++i) rows.push_back(to_row(cases[i], seconds[i], roofs));
  machine.push_back({"fp32 fma peak GFLOP/s", roofs.peak_gflops() > 0 ? fixed(roofs.peak_gflops(), 1) : "null", true});
  machine.push_back({"dram copy bytes", std::to_string(dram_bytes), true});
  machine.push_back({"dram copy GB/s", fixed(roofs.copy_gbps(dram_bytes), 1), true});

  if (options.format == Format::csv) std::fputs(format_description(machine).c_str(), stderr);
  std::fputs(format_report(options.format, machine, rows).c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace convkit::bench

int main(int argc, char** argv) {
  using namespace convkit::bench;
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "convkit-bench: %s\n\n%s", e.what(), kUsage);
    return 2;
  }
  if (options.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    return run(options);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "convkit-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convkit-bench: %s\n", e.what());
    return 1;
  }
}
