#include "ops/tap_map.h"

#include <algorithm>

#include "core/checked_math.h"
#include "ops/im2col.h"

namespace convkit {
namespace {

using std::int64_t;

// Calls visit(o, k, i) for every output index o and kernel offset k, in that order, whose padded
// coordinate reads input index i (not a zero).
template <class Visit>
void for_each_forward_tap(const ConvGeometry& g, int a, Visit&& visit) {
  for (int64_t o = 0; o < g.out[a]; ++o) {
    for (int64_t k = 0; k < g.kernel[a]; ++k) {
      const int64_t i = source_index(o * g.stride[a] - g.pad_before[a] + k * g.dilation[a], g.in[a], g.mode);
      if (i >= 0) visit(o, k, i);
    }
  }
}

// True if b's taps are a's with the same kernel offsets and every source moved by `source_step`.
bool moved_by(const AxisTaps& taps, int64_t a, int64_t b, int64_t source_step) {
  if (taps.count(a) != taps.count(b)) return false;
  for (const AxisTap *p = taps.begin(a), *q = taps.begin(b); p != taps.end(a); ++p, ++q) {
    if (p->kernel != q->kernel || q->source - p->source != source_step) return false;
  }
  return true;
}

}  // namespace

AxisTaps AxisTaps::forward(const ConvGeometry& g, int a) {
  AxisTaps t;
  t.first_.assign(g.out[a] + 1, 0);
  t.taps_.reserve(checked_mul(g.out[a], g.kernel[a], "conv taps"));
  for_each_forward_tap(g, a, [&](int64_t o, int64_t k, int64_t i) {
    t.taps_.push_back({i, k});
    ++t.first_[o + 1];
  });
  for (int64_t o = 0; o < g.out[a]; ++o) t.first_[o + 1] += t.first_[o];
  return t;
}

AxisTaps AxisTaps::backward_data(const ConvGeometry& g, int a) {
  // A counting sort of the forward taps by the input index they read.
  AxisTaps t;
  t.first_.assign(g.in[a] + 1, 0);
  for_each_forward_tap(g, a, [&](int64_t, int64_t, int64_t i) { ++t.first_[i + 1]; });
  for (int64_t i = 0; i < g.in[a]; ++i) t.first_[i + 1] += t.first_[i];
  t.taps_.resize(t.first_.back());
  std::vector<int64_t> next(t.first_.begin(), t.first_.end() - 1);
  for_each_forward_tap(g, a, [&](int64_t o, int64_t k, int64_t i) { t.taps_[next[i]++] = {o, k}; });
  return t;
}

int64_t AxisTaps::max_count() const {
  int64_t most = 0;
  for (int64_t i = 0; i < destinations(); ++i) most = std::max(most, count(i));
  return most;
}

std::vector<AxisRun> find_runs(const AxisTaps& taps, int64_t step) {
  std::vector<AxisRun> runs;
  const int64_t n = taps.destinations();
  // Index arithmetic is arranged so that nothing past n is ever computed: the step (a stride) may be
  // as large as 2**63 - 1, where first + step would overflow.
  for (int64_t residue = 0; residue < std::min(step, n); ++residue) {
    for (int64_t first = residue;;) {
      const int64_t in_class = (n - 1 - first) / step + 1;  // indices first, first + step, ... below n
      AxisRun run{first, step, 1, 0};
      if (in_class > 1 && taps.count(first) > 0 && taps.count(first + step) > 0) {
        run.source_step = taps.begin(first + step)->source - taps.begin(first)->source;
      }
      while (run.count < in_class &&
             moved_by(taps, first + (run.count - 1) * step, first + run.count * step, run.source_step)) {
        ++run.count;
      }
      runs.push_back(run);
      if (run.count == in_class) break;
      first += run.count * step;
    }
  }
  return runs;
}

}  // namespace convkit
