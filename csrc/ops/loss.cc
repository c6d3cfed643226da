// Loss drivers (formulas, reductions and shapes in loss.h).
//
// Each loss is a function of one row (or element) at a time: the row's loss and its gradient are computed
// together while the row is in cache, the softmax in three short loops over it (max, exponentials and
// their sum, then loss terms and gradient), all in double. Rows are cut into blocks whose length depends
// on the shape only; a block's row losses are added in row order, and the block totals in block order
// after the parallel part, so that the reduced loss is bit-identical for any thread count.
//
// The gradient of a mean needs the divisor before the rows run: for labels it is the total weight of the
// non-ignored labels, found by a serial pass over the labels (R reads, against R * K exponentials) that
// also rejects out-of-range labels before anything is written.
#include "ops/loss.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

constexpr int64_t kElementsPerBlock = 8192;  // rows per block: about this many elements, at least one row

void check_shape(const LossShape& s, int64_t min_classes, const char* op) {
  if (s.rows < 0 || s.classes < min_classes) {
    throw std::invalid_argument(std::string(op) + ": bad shape (rows " + std::to_string(s.rows) + ", classes " +
                                std::to_string(s.classes) + ")");
  }
  checked_mul(s.rows, s.classes, op);
}

void check_label_smoothing(double eps) {
  if (!(eps >= 0.0 && eps <= 1.0)) {
    throw std::invalid_argument("label_smoothing must be in [0, 1], got " + std::to_string(eps));
  }
}

// Returns the sum over rows r of row(r, scratch), scratch being scratch_size doubles of the running
// thread's own. Block boundaries and the order of every addition depend on the shape only.
template <class Row>
double sum_over_rows(const LossShape& s, int64_t scratch_size, Row&& row) {
  const int64_t block_rows = std::max<int64_t>(1, kElementsPerBlock / std::max<int64_t>(1, s.classes));
  const int64_t blocks = ceil_div(s.rows, block_rows);
  std::vector<double> block_totals(static_cast<std::size_t>(blocks));
  for_each_share(blocks, block_rows * s.classes, [&](int64_t first_block, int64_t end_block) {
    std::vector<double> scratch(static_cast<std::size_t>(scratch_size));
    for (int64_t b = first_block; b < end_block; ++b) {
      double total = 0.0;
      for (int64_t r = b * block_rows; r < std::min(s.rows, (b + 1) * block_rows); ++r) total += row(r, scratch.data());
      block_totals[static_cast<std::size_t>(b)] = total;
    }
  });
  double total = 0.0;
  for (double t : block_totals) total += t;
  return total;
}

// The factor each row's (or element's) gradient is scaled by: dloss[i] for Reduction::none with an
// upstream gradient, 1 / divisor for a mean, and 1 otherwise.
template <class T>
class GradientScale {
 public:
  GradientScale(Reduction reduction, const T* dloss, double mean_divisor)
      : dloss_(reduction == Reduction::none ? dloss : nullptr),
        factor_(reduction == Reduction::mean ? 1.0 / mean_divisor : 1.0) {}

  double operator()(int64_t i) const { return dloss_ ? static_cast<double>(dloss_[i]) : factor_; }

 private:
  const T* dloss_;
  double factor_;
};

double reduce(double total, Reduction reduction, double mean_divisor) {
  return reduction == Reduction::mean ? total / mean_divisor : total;
}

// Where a row's (or element's) loss goes for Reduction::none.
template <class T>
void store_loss(const LossOutputs<T>& out, Reduction reduction, int64_t i, double loss) {
  if (reduction == Reduction::none && out.losses) out.losses[i] = static_cast<T>(loss);
}

// The total weight of the rows whose label is not ignore_index, summed in row order. Throws, naming the
// first label outside [0, K) and its row.
double label_weight_total(const LossShape& s, const ClassLabels& l, const double* class_weight) {
  double total = 0.0;
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t y = l.labels[r];
    if (y == l.ignore_index) continue;
    if (y < 0 || y >= s.classes) {
      throw std::invalid_argument("label " + std::to_string(y) + " at row " + std::to_string(r) +
                                  " is outside [0, " + std::to_string(s.classes) + ") and is not ignore_index " +
                                  std::to_string(l.ignore_index));
    }
    total += class_weight ? class_weight[y] : 1.0;
  }
  return total;
}

// ---- weighted targets q of the softmax cross-entropy (loss.h) ----------------------------------------

// Labels: q[c] = smooth[c] + (c == label ? hard : 0), smooth[c] = eps / K * w[c], hard = (1 - eps) * w[y].
class LabelTargets {
 public:
  struct Row {
    const double* smooth;
    int64_t label;
    double hard, total;

    double operator()(int64_t c) const { return smooth[c] + (c == label ? hard : 0.0); }
  };

  LabelTargets(const LossShape& s, const ClassLabels& labels, const double* class_weight, double eps)
      : labels_(labels), class_weight_(class_weight), keep_(1.0 - eps), smooth_(static_cast<std::size_t>(s.classes)) {
    const double uniform = eps / static_cast<double>(s.classes);
    for (int64_t c = 0; c < s.classes; ++c) {
      smooth_[static_cast<std::size_t>(c)] = uniform * weight(c);
      smooth_total_ += smooth_[static_cast<std::size_t>(c)];
    }
  }

  bool ignored(int64_t r) const { return labels_.labels[r] == labels_.ignore_index; }

  Row row(int64_t r) const {
    const int64_t y = labels_.labels[r];
    const double hard = keep_ * weight(y);
    return {smooth_.data(), y, hard, smooth_total_ + hard};
  }

 private:
  double weight(int64_t c) const { return class_weight_ ? class_weight_[c] : 1.0; }

  ClassLabels labels_;
  const double* class_weight_;
  double keep_;
  std::vector<double> smooth_;
  double smooth_total_ = 0.0;
};

// Probabilities t: q[c] = w[c] * ((1 - eps) * t[c] + eps / K).
template <class T>
class ProbabilityTargets {
 public:
  struct Row {
    const T* t;
    const double* class_weight;
    double keep, uniform, total;

    double operator()(int64_t c) const {
      return (class_weight ? class_weight[c] : 1.0) * (keep * static_cast<double>(t[c]) + uniform);
    }
  };

  ProbabilityTargets(const LossShape& s, const T* targets, const double* class_weight, double eps)
      : classes_(s.classes), targets_(targets), class_weight_(class_weight), keep_(1.0 - eps),
        uniform_(eps / static_cast<double>(s.classes)) {}

  bool ignored(int64_t) const { return false; }

  Row row(int64_t r) const {
    Row q{targets_ + r * classes_, class_weight_, keep_, uniform_, 0.0};
    for (int64_t c = 0; c < classes_; ++c) q.total += q(c);
    return q;
  }

 private:
  int64_t classes_;
  const T* targets_;
  const double* class_weight_;
  double keep_, uniform_;
};

template <class T, class Targets>
double softmax_cross_entropy_rows(const LossShape& s, const T* logits, const Targets& targets, Reduction reduction,
                                  double mean_divisor, const LossOutputs<T>& out) {
  const int64_t K = s.classes;
  const GradientScale<T> scale(reduction, out.dloss, mean_divisor);
  const double total = sum_over_rows(s, K, [&](int64_t r, double* shifted_exp) {
    const T* z = logits + r * K;
    T* dz = out.grad + r * K;
    if (targets.ignored(r)) {
      std::fill(dz, dz + K, T(0));
      store_loss(out, reduction, r, 0.0);
      return 0.0;
    }
    const typename Targets::Row q = targets.row(r);
    double max = static_cast<double>(z[0]);  // a NaN anywhere makes the sum below NaN, whatever max is
    for (int64_t c = 1; c < K; ++c) max = std::max(max, static_cast<double>(z[c]));
    double sum = 0.0;
    for (int64_t c = 0; c < K; ++c) {
      shifted_exp[c] = std::exp(static_cast<double>(z[c]) - max);
      sum += shifted_exp[c];
    }
    const double log_sum = std::log(sum), inv_sum = 1.0 / sum, g = scale(r);
    double loss = 0.0;
    for (int64_t c = 0; c < K; ++c) {
      const double qc = q(c);
      // -log p[c] = log_sum - (z[c] - max) >= 0. Classes without target mass are skipped, so that a
      // -inf logit (a masked class) costs nothing unless the target puts weight on it.
      if (qc != 0.0) loss += qc * (log_sum - (static_cast<double>(z[c]) - max));
      dz[c] = static_cast<T>(g * (q.total * shifted_exp[c] * inv_sum - qc));
    }
    store_loss(out, reduction, r, loss);
    return loss;
  });
  return reduce(total, reduction, mean_divisor);
}

// log(1 + exp(-|z|)), the part of softplus(z) and softplus(-z) that is not max(+-z, 0).
double softplus_tail(double z) { return std::log1p(std::exp(-std::abs(z))); }

double sigmoid(double z) {
  const double e = std::exp(-std::abs(z));
  return z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

}  // namespace

template <class T>
double softmax_cross_entropy_labels(const LossShape& s, const T* logits, const ClassLabels& labels,
                                    const double* class_weight, double label_smoothing, Reduction reduction,
                                    const LossOutputs<T>& out) {
  check_shape(s, 1, "softmax_cross_entropy");
  check_label_smoothing(label_smoothing);
  const double divisor = label_weight_total(s, labels, class_weight);
  return softmax_cross_entropy_rows(s, logits, LabelTargets(s, labels, class_weight, label_smoothing), reduction,
                                    divisor, out);
}

template <class T>
double softmax_cross_entropy_probabilities(const LossShape& s, const T* logits, const T* targets,
                                           const double* class_weight, double label_smoothing,
                                           Reduction reduction, const LossOutputs<T>& out) {
  check_shape(s, 1, "softmax_cross_entropy");
  check_label_smoothing(label_smoothing);
  return softmax_cross_entropy_rows(s, logits, ProbabilityTargets<T>(s, targets, class_weight, label_smoothing),
                                    reduction, static_cast<double>(s.rows), out);
}

template <class T>
double nll_loss(const LossShape& s, const T* log_probs, const ClassLabels& labels, const double* class_weight,
                Reduction reduction, const LossOutputs<T>& out) {
  check_shape(s, 1, "nll_loss");
  const double divisor = label_weight_total(s, labels, class_weight);
  const GradientScale<T> scale(reduction, out.dloss, divisor);
  const int64_t K = s.classes;
  const double total = sum_over_rows(s, 0, [&](int64_t r, double*) {
    T* dx = out.grad + r * K;
    std::fill(dx, dx + K, T(0));
    const int64_t y = labels.labels[r];
    if (y == labels.ignore_index) {
      store_loss(out, reduction, r, 0.0);
      return 0.0;
    }
    const double w = class_weight ? class_weight[y] : 1.0;
    const double loss = -w * static_cast<double>(log_probs[r * K + y]);
    dx[y] = static_cast<T>(-w * scale(r));
    store_loss(out, reduction, r, loss);
    return loss;
  });
  return reduce(total, reduction, divisor);
}

template <class T>
double binary_cross_entropy_with_logits(const LossShape& s, const T* logits, const T* targets,
                                        const double* pos_weight, Reduction reduction, const LossOutputs<T>& out) {
  check_shape(s, 0, "binary_cross_entropy_with_logits");
  const double count = static_cast<double>(s.rows * s.classes);
  const GradientScale<T> scale(reduction, out.dloss, count);
  const int64_t K = s.classes;
  const double total = sum_over_rows(s, 0, [&](int64_t r, double*) {
    double row_total = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t i = r * K + k;
      const double z = static_cast<double>(logits[i]), t = static_cast<double>(targets[i]);
      const double positive = (pos_weight ? pos_weight[k] : 1.0) * t, tail = softplus_tail(z);
      // softplus(-z) = max(-z, 0) + tail, softplus(z) = max(z, 0) + tail: no exp of a large argument.
      const double loss = positive * (std::max(-z, 0.0) + tail) + (1.0 - t) * (std::max(z, 0.0) + tail);
      out.grad[i] = static_cast<T>(scale(i) * (sigmoid(z) * (positive + 1.0 - t) - positive));
      store_loss(out, reduction, i, loss);
      row_total += loss;
    }
    return row_total;
  });
  return reduce(total, reduction, count);
}

template <class T>
double mse_loss(const LossShape& s, const T* predictions, const T* targets, Reduction reduction,
                const LossOutputs<T>& out) {
  check_shape(s, 0, "mse_loss");
  const double count = static_cast<double>(s.rows * s.classes);
  const GradientScale<T> scale(reduction, out.dloss, count);
  const int64_t K = s.classes;
  const double total = sum_over_rows(s, 0, [&](int64_t r, double*) {
    double row_total = 0.0;
    for (int64_t i = r * K; i < (r + 1) * K; ++i) {
      const double d = static_cast<double>(predictions[i]) - static_cast<double>(targets[i]);
      out.grad[i] = static_cast<T>(2.0 * d * scale(i));
      store_loss(out, reduction, i, d * d);
      row_total += d * d;
    }
    return row_total;
  });
  return reduce(total, reduction, count);
}

#define CONVKIT_INSTANTIATE_LOSS(T)                                                                             \
  template double softmax_cross_entropy_labels<T>(const LossShape&, const T*, const ClassLabels&,             \
                                                  const double*, double, Reduction, const LossOutputs<T>&);   \
  template double softmax_cross_entropy_probabilities<T>(const LossShape&, const T*, const T*, const double*, \
                                                         double, Reduction, const LossOutputs<T>&);           \
  template double nll_loss<T>(const LossShape&, const T*, const ClassLabels&, const double*, Reduction,       \
                              const LossOutputs<T>&);                                                         \
  template double binary_cross_entropy_with_logits<T>(const LossShape&, const T*, const T*, const double*,    \
                                                      Reduction, const LossOutputs<T>&);                      \
  template double mse_loss<T>(const LossShape&, const T*, const T*, Reduction, const LossOutputs<T>&);
CONVKIT_INSTANTIATE_LOSS(float)
CONVKIT_INSTANTIATE_LOSS(double)
#undef CONVKIT_INSTANTIATE_LOSS

}  // namespace convkit
