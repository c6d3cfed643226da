// The convkit-bench output: a machine description and one row per case, as Markdown, CSV or JSON.
#pragma once
#include <string>
#include <vector>

#include "bench/executable/options.h"

namespace convkit::bench {

// One "key: value" of the machine description; numeric values are written unquoted in JSON.
struct Field {
  std::string key, value;
  bool numeric = false;
};

// A measured case; NaN marks a column that does not apply (GB/s of a compute-bound case, and so on).
struct Row {
  std::string name, problem;
  double median_ms, min_ms, gflops, gbps, percent_of_roof;
  std::string roof;  // what percent_of_roof is of, e.g. "FMA peak 186.0 GFLOP/s"
};

// Markdown: the description as "# key: value" lines, then the table. CSV: the table alone (a header line,
// then one line per row). JSON: {"machine": {...}, "rows": [{column: value}, ...]}, null for n/a.
std::string format_report(Format format, const std::vector<Field>& machine, const std::vector<Row>& rows);

// The description lines that precede a Markdown table (and go to stderr with --csv).
std::string format_description(const std::vector<Field>& machine);

// `value` with `decimals` digits after the point.
std::string fixed(double value, int decimals);

}  // namespace convkit::bench
