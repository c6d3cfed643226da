// Group-statistics normalization drivers (layouts and formulas in norm.h).
//
// Reductions and determinism: each sample's P pixels are cut into blocks of pixels_per_block(C) pixels, a
// length that depends on the shape only. A (sample, block) pair is a task; the tasks are dealt to the
// threads in contiguous shares, and every task writes its partial result to its own slot. The partials
// are then merged sample by sample in block order, so that the summation order - and every bit of the
// results - is the same for any thread count.
//
// Accuracy of the statistics (one pass over x): inside a block, each channel accumulates the shifted sums
// sum(x - k) and sum((x - k)^2) in double, k being the channel's value at the block's first pixel. The
// shift keeps the sums from cancelling when the mean is large against the spread (1e4 + N(0, 1) loses
// nothing). A block's channels are combined into its group's (mean, M2) exactly, and the blocks' (count,
// mean, M2) are merged with Chan et al.'s pairwise update, which never subtracts two large sums.
//
// The loops over a row's channels are the selected "norm" kernel's (kernels/norm_ukernel.h: the baseline
// and an AVX2 build of the same loops). The elementwise passes (forward, backward dx) compute in double
// and round once, so float32 results are the correctly rounded values of the double formulas up to a few
// double ulps.
#include "ops/norm.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/workspace.h"
#include "kernels/registry.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kElementsPerBlock = 8192;  // about 64 KiB of float32 x per block: several blocks per thread

int64_t pixels_per_block(int64_t channels) { return std::max<int64_t>(1, kElementsPerBlock / channels); }

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

// Runs row(r, scratch) for each pixel row r = (sample, pixel) in [0, N * P), split in contiguous shares over
// the threads, after load_sample(s, scratch) has filled the thread's scratch (scratch_size doubles) for
// the row's sample. Each row is written by one thread only: any thread count gives the same bits.
template <class LoadSample, class Row>
void for_each_row(const NormLayout& l, int64_t scratch_size, LoadSample&& load_sample, Row&& row) {
  for_each_share(l.samples * l.pixels, l.channels(), [&](int64_t begin, int64_t end) {
    std::vector<double> scratch(static_cast<std::size_t>(scratch_size));
    int64_t loaded_sample = -1;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = r / l.pixels;
      if (s != loaded_sample) load_sample(s, scratch.data());
      loaded_sample = s;
      row(r, scratch.data());
    }
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
  const int64_t C = l.channels(), G = l.groups, Cg = l.group_channels;
  const BlockPlan plan(l);
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  const int64_t partial_size = checked_mul(plan.tasks, G, "norm partials");
  require_workspace(checked_mul(2 * sizeof(double), partial_size, "norm partials"), "norm statistics partials");
  std::vector<double> block_mean(static_cast<std::size_t>(partial_size));
  std::vector<double> block_m2(block_mean.size());

  // scratch: shift, sum(x - shift), sum((x - shift)^2), each C doubles.
  for_each_task(plan, C, 3 * C, [&](int64_t task, double* scratch) {
    double* shift = scratch;
    double* s1 = scratch + C;
    double* s2 = scratch + 2 * C;
    const int64_t p0 = plan.first_pixel(task), p1 = plan.end_pixel(task);
    kernel.block_sums(x + (plan.sample(task) * l.pixels + p0) * C, p1 - p0, C, shift, s1, s2);
    // Channel c's (mean, M2) over the block's n pixels, then its group's over n * Cg values:
    // M2_group = sum_c M2_c + n * sum_c (mean_c - mean_group)^2.
    const double n = static_cast<double>(p1 - p0);
    for (int64_t c = 0; c < C; ++c) {
      const double channel_mean = s1[c] / n;
      s2[c] = std::max(0.0, s2[c] - s1[c] * channel_mean);
      s1[c] = shift[c] + channel_mean;
    }
    for (int64_t g = 0; g < G; ++g) {
      double sum = 0.0, m2 = 0.0;
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) sum += s1[c];
      const double group_mean = sum / static_cast<double>(Cg);
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) m2 += s2[c] + n * (s1[c] - group_mean) * (s1[c] - group_mean);
      block_mean[task * G + g] = group_mean;
      block_m2[task * G + g] = m2;
    }
  });

  // Chan's merge of the blocks, in block order.
  for (int64_t s = 0; s < l.samples; ++s) {
    for (int64_t g = 0; g < G; ++g) {
      double count = 0.0, m = 0.0, m2 = 0.0;
      for (int64_t b = 0; b < plan.blocks_per_sample; ++b) {
        const int64_t task = s * plan.blocks_per_sample + b;
        const double nb = static_cast<double>((plan.end_pixel(task) - plan.first_pixel(task)) * Cg);
        const double total = count + nb;
        const double delta = block_mean[task * G + g] - m;
        m += delta * nb / total;
        m2 += block_m2[task * G + g] + delta * delta * count * nb / total;
        count = total;
      }
      mean[s * G + g] = m;
      var[s * G + g] = count > 0.0 ? m2 / count : 0.0;
    }
  }
}

template <class T>
void norm_forward(const NormLayout& l, const T* x, const double* mean, const double* inv_std, const T* gamma,
                  const T* beta, T* y) {
  check_layout(l);
  const int64_t C = l.channels(), Cg = l.group_channels;
  // scratch: y[c] = (x[c] - center[c]) * scale[c] + offset[c] for the current sample, C doubles each.
  auto load_sample = [&](int64_t s, double* center) {
    double* scale = center + C;
    double* offset = center + 2 * C;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t sg = s * l.groups + c / Cg;
      center[c] = mean[sg];
      scale[c] = inv_std[sg] * (gamma ? static_cast<double>(gamma[c]) : 1.0);
      offset[c] = beta ? static_cast<double>(beta[c]) : 0.0;
    }
  };
  const NormUkernel<T>& kernel = selected_norm_ukernel<T>();
  for_each_row(l, 3 * C, load_sample, [&](int64_t r, const double* center) {
    kernel.normalize_row(x + r * C, C, center, center + C, center + 2 * C, y + r * C);
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
  require_workspace(checked_mul(2 * sizeof(double), partial_size, "norm partials"), "norm gradient partials");
  std::vector<double> block_dy(static_cast<std::size_t>(partial_size));
  std::vector<double> block_dy_xhat(block_dy.size());
  // scratch: the sample's mean spread over its channels.
  for_each_task(plan, C, C, [&](int64_t task, double* center) {
    const int64_t s = plan.sample(task), p0 = plan.first_pixel(task), p1 = plan.end_pixel(task);
    double* sum_dy = block_dy.data() + task * C;
    double* sum_dy_xhat = block_dy_xhat.data() + task * C;
    for (int64_t c = 0; c < C; ++c) center[c] = mean[s * G + c / Cg];
    const int64_t first = (s * l.pixels + p0) * C;
    kernel.gradient_sums(dy + first, x + first, p1 - p0, C, center, sum_dy, sum_dy_xhat);
    for (int64_t c = 0; c < C; ++c) sum_dy_xhat[c] *= inv_std[s * G + c / Cg];
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
  for (int64_t c = 0; c < C; ++c) {
    double total_dy = 0.0, total_dy_xhat = 0.0;
    for (int64_t s = 0; s < l.samples; ++s) total_dy += sample_dy[s * C + c], total_dy_xhat += sample_dy_xhat[s * C + c];
    if (dbeta) dbeta[c] = static_cast<T>(total_dy);
    if (dgamma) dgamma[c] = static_cast<T>(total_dy_xhat);
  }
  std::vector<double> mean_dyg(static_cast<std::size_t>(checked_mul(l.samples, G, "norm sums")), 0.0);
  std::vector<double> mean_dyg_xhat(mean_dyg.size(), 0.0);
  const double count = static_cast<double>(l.pixels * Cg);
  if (batch_statistics && count > 0.0) {
    for (int64_t s = 0; s < l.samples; ++s) {
      for (int64_t c = 0; c < C; ++c) {
        mean_dyg[s * G + c / Cg] += gamma_of(c) * sample_dy[s * C + c] / count;
        mean_dyg_xhat[s * G + c / Cg] += gamma_of(c) * sample_dy_xhat[s * C + c] / count;
      }
    }
  }

  // dx pass: dx[c] = dy[c] * a[c] + (x[c] - center[c]) * b[c] + d[c], from
  // dx = inv_std * (dy*gamma - mean_g(dy*gamma) - xhat * mean_g(dy*gamma*xhat)).
  auto load_sample = [&](int64_t s, double* a) {
    double* b = a + C;
    double* d = a + 2 * C;
    double* center = a + 3 * C;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t sg = s * G + c / Cg;
      a[c] = inv_std[sg] * gamma_of(c);
      b[c] = -inv_std[sg] * inv_std[sg] * mean_dyg_xhat[sg];
      d[c] = -inv_std[sg] * mean_dyg[sg];
      center[c] = mean[sg];
    }
  };
  for_each_row(l, 4 * C, load_sample, [&](int64_t r, const double* a) {
    kernel.gradient_row(dy + r * C, x + r * C, C, a, a + C, a + 2 * C, a + 3 * C, dx + r * C);
  });
}

#define CONVKIT_INSTANTIATE_NORM(T)                                                                            \
  template void norm_statistics<T>(const NormLayout&, const T*, double*, double*);                             \
  template void norm_forward<T>(const NormLayout&, const T*, const double*, const double*, const T*, const T*, \
                                T*);                                                                           \
  template void norm_backward<T>(const NormLayout&, const T*, const T*, const double*, const double*, const T*, \
                                 bool, T*, T*, T*);
CONVKIT_INSTANTIATE_NORM(float)
CONVKIT_INSTANTIATE_NORM(double)
#undef CONVKIT_INSTANTIATE_NORM

}  // namespace convkit
