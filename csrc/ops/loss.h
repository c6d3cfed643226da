// Losses, each returning its value and the gradient of that value with respect to its input in one call.
//
// Shape legend: the input (logits, log-probabilities or predictions) is (R, K), contiguous: R rows (the batch
// and any spatial positions, N * spatial) of K classes (the last axis). For the class losses a row is
// one sample; BCE and MSE are elementwise, their "rows" only a way to share out the work.
//
//   softmax CE   p = softmax(z) per row, computed as exp(z - m) / s with m = max(z), s = sum exp(z - m)
//                row loss  l = sum_c q[c] * (log s - (z[c] - m))          (= -sum_c q[c] log p[c])
//                gradient  dl/dz[c] = Q * p[c] - q[c],  Q = sum_c q[c]
//     with q the weighted target of the row (w: class weights, eps: label smoothing):
//                labels y        q[c] = (1 - eps) * w[y] * [c == y] + eps / K * w[c]
//                probabilities t q[c] = w[c] * ((1 - eps) * t[c] + eps / K)
//   NLL          l = -w[y] * x[y]                      dl/dx[c] = -w[y] * [c == y]
//   BCE (logits) l = pw[k] * t * softplus(-z) + (1 - t) * softplus(z)   (pw: pos_weight per column k)
//                dl/dz = sigmoid(z) * (pw[k] * t + 1 - t) - pw[k] * t
//   MSE          l = (x - t)^2                          dl/dx = 2 * (x - t)
//
// Reductions, PyTorch's: 'sum' adds the row (or element) losses; 'mean' divides that sum by
//   - the total weight of the non-ignored labels, sum_r w[y_r], for labels (CE and NLL),
//   - R for probability targets (class weights or not, as torch.nn.functional.cross_entropy),
//   - R * K for the elementwise losses;
// a mean over nothing (all labels ignored, or an empty batch) is NaN. 'none' writes the row (or element)
// losses. The gradient is that of the returned value; for 'none' it is that of sum(dloss * losses), dloss
// being the upstream gradient of the losses (all ones when not given). A row whose label is ignore_index
// has loss 0 and gradient 0.
//
// Every sum is taken in double in an order fixed by the shape, so results are bit-identical for any thread
// count; T = float results are the double results rounded once.
#pragma once
#include <cstdint>

namespace convkit {

enum class Reduction { none, sum, mean };

struct LossShape {
  std::int64_t rows, classes;
};

// Integer class labels, one per row, and the label value that marks a row to leave out.
struct ClassLabels {
  const std::int64_t* labels;  // (R,)
  std::int64_t ignore_index;
};

// Where a loss writes its results besides its returned value. dloss and losses hold one value per row for
// the class losses and one per element for BCE and MSE; both are used with Reduction::none only (dloss
// may then be null, meaning ones) and are ignored otherwise. grad has the input's shape.
template <class T>
struct LossOutputs {
  const T* dloss;
  T* losses;
  T* grad;
};

// Each returns the reduced loss (for Reduction::none, the sum of the losses). Throws std::invalid_argument
// on a bad shape, a label outside [0, K) other than ignore_index, or label_smoothing outside [0, 1].
// class_weight and pos_weight: (K,) doubles, or null for ones.

template <class T>
double softmax_cross_entropy_labels(const LossShape& shape, const T* logits, const ClassLabels& labels,
                                    const double* class_weight, double label_smoothing, Reduction reduction,
                                    const LossOutputs<T>& out);

template <class T>
double softmax_cross_entropy_probabilities(const LossShape& shape, const T* logits, const T* targets,
                                           const double* class_weight, double label_smoothing,
                                           Reduction reduction, const LossOutputs<T>& out);

template <class T>
double nll_loss(const LossShape& shape, const T* log_probs, const ClassLabels& labels, const double* class_weight,
                Reduction reduction, const LossOutputs<T>& out);

template <class T>
double binary_cross_entropy_with_logits(const LossShape& shape, const T* logits, const T* targets,
                                        const double* pos_weight, Reduction reduction, const LossOutputs<T>& out);

template <class T>
double mse_loss(const LossShape& shape, const T* predictions, const T* targets, Reduction reduction,
                const LossOutputs<T>& out);

}  // namespace convkit
