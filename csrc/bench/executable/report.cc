#include "bench/executable/report.h"

#include <cmath>
#include <cstdio>
#include <functional>

namespace convkit::bench {
namespace {

const char* const kColumns[] = {"kernel", "problem", "median ms", "min ms", "GFLOP/s", "GB/s", "% of roof", "roof"};

// The row's cells in kColumns order; `missing` stands for NaN. For people (Markdown) numbers get fixed
// decimals; for machines (CSV, JSON) six significant digits, so that a slow case does not read 0.
std::vector<std::string> cells(const Row& row, bool for_people, const std::string& missing,
                               const std::function<std::string(const std::string&)>& text) {
  auto numeric = [&](double v, int decimals) {
    if (!std::isfinite(v)) return missing;
    if (for_people) return fixed(v, decimals);
    char digits[32];
    std::snprintf(digits, sizeof digits, "%.6g", v);
    return std::string(digits);
  };
  return {text(row.name),         text(row.problem),    numeric(row.median_ms, 4),        numeric(row.min_ms, 4),
          numeric(row.gflops, 2), numeric(row.gbps, 2), numeric(row.percent_of_roof, 1), text(row.roof)};
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\', out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string plain(const std::string& text) { return text; }

std::string markdown(const std::vector<Field>& machine, const std::vector<Row>& rows) {
  std::string out = format_description(machine) + "|";
  for (const char* column : kColumns) out += std::string(" ") + column + " |";
  out += "\n|";
  for (std::size_t i = 0; i < std::size(kColumns); ++i) out += "---|";
  out += "\n";
  for (const Row& row : rows) {
    out += "|";
    for (const std::string& cell : cells(row, true, "n/a", plain)) out += " " + cell + " |";
    out += "\n";
  }
  return out;
}

std::string csv(const std::vector<Row>& rows) {
  std::string out;
  for (const char* column : kColumns) out += std::string(out.empty() ? "" : ",") + csv_field(column);
  out += "\n";
  for (const Row& row : rows) {
    std::string line;
    for (const std::string& cell : cells(row, false, "", csv_field)) line += (line.empty() ? "" : ",") + cell;
    out += line + "\n";
  }
  return out;
}

std::string json(const std::vector<Field>& machine, const std::vector<Row>& rows) {
  std::string out = "{\n  \"machine\": {";
  for (std::size_t i = 0; i < machine.size(); ++i) {
    const Field& f = machine[i];
    out += (i ? ",\n    " : "\n    ") + json_string(f.key) + ": " + (f.numeric ? f.value : json_string(f.value));
  }
  out += "\n  },\n  \"rows\": [";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::vector<std::string> values = cells(rows[r], false, "null", json_string);
    out += r ? ",\n    {" : "\n    {";
    for (std::size_t c = 0; c < values.size(); ++c) {
      out += (c ? ", " : "") + json_string(kColumns[c]) + ": " + values[c];
    }
    out += "}";
  }
  return out + "\n  ]\n}\n";
}

}  // namespace

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string format_description(const std::vector<Field>& machine) {
  std::string out;
  for (const Field& f : machine) out += "# " + f.key + ": " + f.value + "\n";
  return out;
}

std::string format_report(Format format, const std::vector<Field>& machine, const std::vector<Row>& rows) {
  switch (format) {
    case Format::markdown: return markdown(machine, rows);
    case Format::csv: return csv(rows);
    case Format::json: return json(machine, rows);
  }
  return {};
}

}  // namespace convkit::bench
