// Group-statistics normalization drivers (layouts and formulas in norm.h).
//
// Reductions and determinism: each sample's P pixels are cut into blocks of pixels_per_block(C) pixels, a
// length that depends on the shape only. A (sample, block) pair is a task; the tasks are dealt to the
// threads in contiguous shares, and every task writes its partial result to its own slot. The partials
// are then merged sample by sample in block order, so that the summation order - and every bit of the
// results - is the same for any thread count.
//
// Accuracy of the statistics (one pass over x): each channel accumulates the shifted sums sum(x - k) and
// sum((x - k)^2) in double, k being the channel's value in the sample's first pixel. The shift keeps the
// sums from cancelling when the mean is large against the spread (1e4 + N(0, 1) loses nothing); with one
// shift per sample, the blocks' sums are simply added (in block order). Each sample's channels are then
// combined into its groups' (mean, M2) exactly: M2_group = sum_c M2_c + n * sum_c (mean_c - mean_group)^2.
// (A Chan merge of per-block (mean, M2) pairs did the same work with divisions per block and group; it cost
// as much as the pass over x on BatchNorm's many channels.)
//
// The loops over a row's channels are the selected "norm" kernel's (kernels/norm_ukernel.h: the baseline
// and an AVX2 build). The elementwise passes (forward, backward dx) compute in the data's dtype from
// coefficients computed in double and rounded once, with the mean split in two (split() below): float32
// results are within a few float32 ulps of the double formulas, and these passes run at memory speed.
#include "ops/norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/workspace.h"
#include "core/threading.h"
#include "kernels/registry.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kElementsPerBlock = 8192;  // 32 KiB of float32 x per block (L1): several blocks per thread
// Each block keeps two doubles per channel of partial sums: with 16 pixels or more per block, those stay
// below a quarter of x's float32 size however many channels there are.
constexpr int64_t kMinBlockPixels = 16;

int64_t pixels_per_block(int64_t channels) { return std::max(kMinBlockPixels, kElementsPerBlock / channels); }

// The (sample, block) tasks of a layout.
struct BlockPlan {
  int64_t pixels, block_pixels, blocks_per_sample, tasks;

  explicit BlockPlan(const NormLayout& l)
      : pixels(l.pixels),
        block_pixels(pixels_per_block(l.channels())),
        blocks_per_sample(ceil_div(l.pixels, block_pixels)),
        tasks(checked_mul(l.samples, blocks_per_sample, "norm blocks")) {}

  int64_t sample(int64_t task) const { return task / blocks_per_sample; }
  int64_t first_pixel(int64_t task) const { return task % blocks_per_sample * block_pixels; }
  int64_t end_pixel(int64_t task) const { return std::min(pixels, first_pixel(task) + block_pixels); }
};

// Runs task(index, scratch) for each task index, the indices split in contiguous shares over the threads
// (ops/parallel_shares.h). scratch is a per-thread vector of scratch_size doubles.
template <class Task>
void for_each_task(const BlockPlan& plan, int64_t channels, int64_t scratch_size, Task&& task) {
  for_each_share(plan.tasks, plan.block_pixels * channels, [&](int64_t begin, int64_t end) {
    std::vector<double> scratch(static_cast<std::size_t>(scratch_size));
    for (int64_t i = begin; i < end; ++i) task(i, scratch.data());
  });
}

// Runs rows(first, count, scratch) over the pixel rows r = (sample, pixel) in [0, N * P), split in contiguous
// shares over the threads and cut where the sample changes, after load_sample(s, scratch) has filled the
// thread's scratch (scratch_size values of T) for those rows' sample. Each row is written by one thread
// only: any thread count gives the same bits.
template <class T, class LoadSample, class Rows>
void for_each_sample_run(const NormLayout& l, int64_t scratch_size, LoadSample&& load_sample, Rows&& rows) {
  for_each_share(l.samples * l.pixels, l.channels(), [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(static_cast<std::size_t>(scratch_size));
    for (int64_t r = begin; r < end;) {
      const int64_t s = r / l.pixels, run_end = std::min(end, (s + 1) * l.pixels);
      load_sample(s, scratch.data());
      rows(r, run_end - r, scratch.data());
      r = run_end;
    }
  });
}

// The statistic v as an unevaluated sum high + low of two T values (low is 0 for double). With high the
// rounding of a mean, x - high is exact for the x near the mean (Sterbenz), so centring in T loses nothing
// to the mean's rounding even when the mean is large against the spread (1e4 + N(0, 1) in float32).
template <class T>
void split(double v, T* high, T* low) {
  *high = static_cast<T>(v);
  *low = static_cast<T>(v - static_cast<double>(*high));
}

// Calls f(c, sg) for every channel c of sample s, sg being the index of its (sample, group) statistics
// (walking the groups spares an integer division per channel, which showed on LayerNorm's short rows).
template <class F>
void for_each_channel(const NormLayout& l, int64_t s, F&& f) {
  for (int64_t g = 0, c = 0; g < l.groups; ++g) {
    for (const int64_t end = c + l.group_channels; c < end; ++c) f(c, s * l.groups + g);
  }
}

// A sample's channel sums (s1, s2, C doubles each, shifted by the sample's first row `shift`; overwritten)
// -> its groups' mean and variance. Channel c's mean and M2 over the n pixels, then its group's over n * Cg
// values: M2_group = sum_c M2_c + n * sum_c (mean_c - mean_group)^2.
template <class T>
void finish_statistics(const NormLayout& l, const T* shift, int64_t s, double* s1, double* s2, double* mean,
                       double* var) {
  const int64_t C = l.channels(), G = l.groups, Cg = l.group_channels;
  const double n = static_cast<double>(l.pixels), inv_n = 1.0 / n;
  for (int64_t c = 0; c < C; ++c) {
    const double channel_mean = s1[c] * inv_n;  // (a division per channel showed on LayerNorm's rows)
    s2[c] = std::max(0.0, s2[c] - s1[c] * channel_mean);
    s1[c] = static_cast<double>(shift[c]) + channel_mean;
  }
  for (int64_t g = 0; g < G; ++g) {
    double sum = 0.0, m2 = 0.0;
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) sum += s1[c];
    const double group_mean = sum / static_cast<double>(Cg);
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) m2 += s2[c] + n * (s1[c] - group_mean) * (s1[c] - group_mean);
    mean[s * G + g] = group_mean;
    var[s * G + g] = m2 / (n * static_cast<double>(Cg));
  }
}

// Sample s's forward coefficients, 4 C values of T: y[c] = ((x[c] - center[c]) - center_low[c]) * scale[c] +
// offset[c], stored center, center_low, scale, offset.
template <class T>
void load_forward_coefficients(const NormLayout& l, int64_t s, const double* mean, const double* inv_std,
                               const T* gamma, const T* beta, T* center) {
  const int64_t C = l.channels();
  T* center_low = center + C;
  T* scale = center + 2 * C;
  T* offset = center + 3 * C;
  for_each_channel(l, s, [&](int64_t c, int64_t sg) {
    split(mean[sg], center + c, center_low + c);
    scale[c] = static_cast<T>(inv_std[sg] * (gamma ? static_cast<double>(gamma[c]) : 1.0));
    offset[c] = beta ? beta[c] : T(0);
  });
}

}  // namespace

void check_layout(const NormLayout& l) {
  if (l.samples < 0 || l.pixels < 0 || l.groups < 1 || l.group_channels < 1) {
    throw std::invalid_argument("norm: bad layout (samples " + std::to_string(l.samples) + ", pixels " +
                                std::to_string(l.pixels) + ", groups " + std::to_string(l.groups) +
                                ", channels per group " + std::to_string(l.group_channels) + ")");
  }
  checked_mul(checked_mul(l.samples, l.pixels, "norm size"), l.channels(), "norm size");
}

template <class T>
void norm_statistics(const NormLayout& l, const T* x, double* mean, double* var) {
  check_layout(l);
  const int64_t C = l.channels(), G = l.groups;
  if (l.pixels == 0) {
    std::fill(mean, mean + l.samples * G, 0.0);
    std::fill(var, var + l.samples * G, 0.0);
    return;
  }
  const BlockPlan plan(l);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  auto first_row = [&](int64_t s) { return x + s * l.pixels * C; };
  auto finish_sample = [&](int64_t s, double* s1, double* s2) {
    finish_statistics(l, first_row(s), s, s1, s2, mean, var);
  };

  // One block per sample (LayerNorm, small images): each task finishes its sample in its own scratch.
  // Otherwise each task leaves its block's sums in its slot, added up below in block order.
  const bool one_block = plan.blocks_per_sample == 1;
  std::vector<double> block_sums(one_block ? 0 : static_cast<std::size_t>(checked_mul(plan.tasks, 2 * C, "norm partials")));
  for_each_task(plan, C, one_block ? 2 * C : 0, [&](int64_t task, double* scratch) {
    const int64_t s = plan.sample(task), p0 = plan.first_pixel(task), p1 = plan.end_pixel(task);
    double* sums = one_block ? scratch : block_sums.data() + task * 2 * C;
    kernel.block_sums(x + (s * l.pixels + p0) * C, p1 - p0, C, first_row(s), sums, sums + C);
    if (one_block) finish_sample(s, sums, sums + C);
  });
  if (one_block) return;
  for (int64_t s = 0; s < l.samples; ++s) {
    double* total = block_sums.data() + s * plan.blocks_per_sample * 2 * C;  // the sample's first block
    for (int64_t b = 1; b < plan.blocks_per_sample; ++b) {
      const double* block = total + b * 2 * C;
      for (int64_t i = 0; i < 2 * C; ++i) total[i] += block[i];
    }
    finish_sample(s, total, total + C);
  }
}

template <class T>
void norm_forward(const NormLayout& l, const T* x, const double* mean, const double* inv_std, const T* gamma,
                  const T* beta, T* y) {
  check_layout(l);
  const int64_t C = l.channels();
  auto load_sample = [&](int64_t s, T* coefficients) {
    load_forward_coefficients(l, s, mean, inv_std, gamma, beta, coefficients);
  };
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  for_each_sample_run<T>(l, 4 * C, load_sample, [&](int64_t r, int64_t rows, const T* center) {
    kernel.normalize_rows(x + r * C, rows, C, center, center + C, center + 2 * C, center + 3 * C, y + r * C);
  });
}

template <class T>
void norm_normalize(const NormLayout& l, const T* x, double eps, const T* gamma, const T* beta, T* y, double* mean,
                    double* var, double* inv_std) {
  check_layout(l);
  if (!(eps >= 0.0)) throw std::invalid_argument("norm: eps must be >= 0, got " + std::to_string(eps));
  const int64_t C = l.channels(), G = l.groups;
  auto set_inv_std = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) inv_std[i] = 1.0 / std::sqrt(var[i] + eps);
  };
  if (l.samples < num_threads() || l.pixels == 0) {
    norm_statistics(l, x, mean, var);
    set_inv_std(0, l.samples * G);
    norm_forward(l, x, mean, inv_std, gamma, beta, y);
    return;
  }
  // A thread takes whole samples: a sample's statistics, then its y while the sample is still in cache
  // (after the pass over all of x that the two calls above make, it would come from the next cache level or
  // memory). The blocks and their order are norm_statistics', so every bit is the same.
  const BlockPlan plan(l);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  for_each_share(l.samples, l.pixels * C, [&](int64_t begin, int64_t end) {
    std::vector<double> sums(static_cast<std::size_t>(4 * C));  // the sample's total, then one block's
    std::vector<T> coefficients(static_cast<std::size_t>(4 * C));
    double* total = sums.data();
    double* block = total + 2 * C;
    T* center = coefficients.data();
    for (int64_t s = begin; s < end; ++s) {
      const T* sample = x + s * l.pixels * C;
      for (int64_t b = 0; b < plan.blocks_per_sample; ++b) {
        const int64_t p0 = b * plan.block_pixels, p1 = std::min(l.pixels, p0 + plan.block_pixels);
        double* out = b == 0 ? total : block;
        kernel.block_sums(sample + p0 * C, p1 - p0, C, sample, out, out + C);
        if (b > 0) {
          for (int64_t i = 0; i < 2 * C; ++i) total[i] += block[i];
        }
      }
      finish_statistics(l, sample, s, total, total + C, mean, var);
      set_inv_std(s * G, (s + 1) * G);
      load_forward_coefficients(l, s, mean, inv_std, gamma, beta, center);
      kernel.normalize_rows(sample, l.pixels, C, center, center + C, center + 2 * C, center + 3 * C,
                            y + s * l.pixels * C);
    }
  });
}

template <class T>
void norm_backward(const NormLayout& l, const T* dy, const T* x, const double* mean, const double* inv_std,
                   const T* gamma, bool batch_statistics, T* dx, T* dgamma, T* dbeta) {
  check_layout(l);
  const int64_t C = l.channels(), G = l.groups, Cg = l.group_channels;
  const BlockPlan plan(l);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  auto gamma_of = [&](int64_t c) { return gamma ? static_cast<double>(gamma[c]) : 1.0; };

  // Reduction pass: per task and channel, sum(dy) and sum(dy * xhat).
  const int64_t partial_size = checked_mul(plan.tasks, C, "norm partials");
  const WorkspaceCharge partials_charge(checked_mul(2 * sizeof(double), partial_size, "norm partials"),
                                        "norm gradient partials");
  std::vector<double> block_dy(static_cast<std::size_t>(partial_size));
  std::vector<double> block_dy_xhat(block_dy.size());
  // scratch: the sample's mean spread over its channels.
  for_each_task(plan, C, C, [&](int64_t task, double* center) {
    const int64_t s = plan.sample(task), p0 = plan.first_pixel(task), p1 = plan.end_pixel(task);
    double* sum_dy = block_dy.data() + task * C;
    double* sum_dy_xhat = block_dy_xhat.data() + task * C;
    for_each_channel(l, s, [&](int64_t c, int64_t sg) { center[c] = mean[sg]; });
    const int64_t first = (s * l.pixels + p0) * C;
    kernel.gradient_sums(dy + first, x + first, p1 - p0, C, center, sum_dy, sum_dy_xhat);
    for_each_channel(l, s, [&](int64_t c, int64_t sg) { sum_dy_xhat[c] *= inv_std[sg]; });
  });

  // Merge in block order: per (sample, channel) sums, then per (sample, group) means of dy*gamma and
  // dy*gamma*xhat, and dgamma/dbeta summed over the samples in order.
  // (With one block per sample, as in LayerNorm, the block sums are the sample sums.)
  std::vector<double> sample_dy, sample_dy_xhat;
  if (plan.blocks_per_sample == 1) {
    sample_dy = std::move(block_dy);
    sample_dy_xhat = std::move(block_dy_xhat);
  } else {
    sample_dy.assign(static_cast<std::size_t>(checked_mul(l.samples, C, "norm sums")), 0.0);
    sample_dy_xhat.assign(sample_dy.size(), 0.0);
    for (int64_t task = 0; task < plan.tasks; ++task) {
      const int64_t s = plan.sample(task);
      for (int64_t c = 0; c < C; ++c) {
        sample_dy[s * C + c] += block_dy[task * C + c];
        sample_dy_xhat[s * C + c] += block_dy_xhat[task * C + c];
      }
    }
  }
  // Summed over the samples in order, a sample's row at a time (a channel at a time walked LayerNorm's
  // (samples, C) sums column by column, out of cache).
  std::vector<double> total_dy(static_cast<std::size_t>(C), 0.0), total_dy_xhat(total_dy.size(), 0.0);
  for (int64_t s = 0; s < l.samples; ++s) {
    for (int64_t c = 0; c < C; ++c) total_dy[c] += sample_dy[s * C + c], total_dy_xhat[c] += sample_dy_xhat[s * C + c];
  }
  for (int64_t c = 0; c < C; ++c) {
    if (dbeta) dbeta[c] = static_cast<T>(total_dy[c]);
    if (dgamma) dgamma[c] = static_cast<T>(total_dy_xhat[c]);
  }
  std::vector<double> mean_dyg(static_cast<std::size_t>(checked_mul(l.samples, G, "norm sums")), 0.0);
  std::vector<double> mean_dyg_xhat(mean_dyg.size(), 0.0);
  const double count = static_cast<double>(l.pixels * Cg);
  if (batch_statistics && count > 0.0) {
    for (int64_t s = 0; s < l.samples; ++s) {
      for_each_channel(l, s, [&](int64_t c, int64_t sg) {
        mean_dyg[sg] += gamma_of(c) * sample_dy[s * C + c] / count;
        mean_dyg_xhat[sg] += gamma_of(c) * sample_dy_xhat[s * C + c] / count;
      });
    }
  }

  // dx pass: dx[c] = dy[c] * a[c] + ((x[c] - center[c]) - center_low[c]) * b[c] + d[c] in T, from
  // dx = inv_std * (dy*gamma - mean_g(dy*gamma) - xhat * mean_g(dy*gamma*xhat)).
  auto load_sample = [&](int64_t s, T* a) {
    T* b = a + C;
    T* d = a + 2 * C;
    T* center = a + 3 * C;
    T* center_low = a + 4 * C;
    for_each_channel(l, s, [&](int64_t c, int64_t sg) {
      a[c] = static_cast<T>(inv_std[sg] * gamma_of(c));
      b[c] = static_cast<T>(-inv_std[sg] * inv_std[sg] * mean_dyg_xhat[sg]);
      d[c] = static_cast<T>(-inv_std[sg] * mean_dyg[sg]);
      split(mean[sg], center + c, center_low + c);
    });
  };
  for_each_sample_run<T>(l, 5 * C, load_sample, [&](int64_t r, int64_t rows, const T* a) {
    kernel.gradient_rows(dy + r * C, x + r * C, rows, C, a, a + C, a + 2 * C, a + 3 * C, a + 4 * C, dx + r * C);
  });
}

#define CONVKIT_INSTANTIATE_NORM(T)                                                                            \
  template void norm_statistics<T>(const NormLayout&, const T*, double*, double*);                             \
  template void norm_forward<T>(const NormLayout&, const T*, const double*, const double*, const T*, const T*, \
                                T*);                                                                           \
  template void norm_normalize<T>(const NormLayout&, const T*, double, const T*, const T*, T*, double*, double*,  \
                                  double*);                                                                     \
  template void norm_backward<T>(const NormLayout&, const T*, const T*, const double*, const double*, const T*, \
                                 bool, T*, T*, T*);
CONVKIT_INSTANTIATE_NORM(float)
CONVKIT_INSTANTIATE_NORM(double)
#undef CONVKIT_INSTANTIATE_NORM

}  // namespace convkit
