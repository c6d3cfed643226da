// Fused optimizer update drivers (formulas in optim.h).
//
// All tensors of a group are seen as one run of elements, cut into contiguous shares, one per thread: a
// thread's share may start in the middle of one tensor and end in another. The loops are plain elementwise
// code that the compiler vectorises; the update is bound by memory traffic (3 to 5 streams), not arithmetic.
#include "ops/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// Runs update(tensor, begin, end) over element ranges [begin, end) of the tensors, so that the ranges of
// all calls together cover every element once; one parallel region for the whole group.
template <class Tensor, class Update>
void for_each_element_range(const std::vector<Tensor>& tensors, Update&& update) {
  std::vector<int64_t> first(tensors.size() + 1, 0);  // first[i]: index of tensor i's first element
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].size < 0) throw std::invalid_argument("optimizer: negative tensor size");
    first[i + 1] = checked_add(first[i], tensors[i].size, "optimizer elements");
  }
  for_each_share(first.back(), 1, [&](int64_t begin, int64_t end) {
    auto tensor = std::upper_bound(first.begin(), first.end(), begin) - first.begin() - 1;
    for (int64_t at = begin; at < end; ++tensor) {
      const int64_t stop = std::min(end, first[tensor + 1]);
      if (stop > at) update(tensors[tensor], at - first[tensor], stop - first[tensor]);
      at = std::max(at, stop);
    }
  });
}

template <class T>
void sgd_range(const SgdTensor<T>& t, int64_t begin, int64_t end, const SgdOptions& o) {
  const T lr = static_cast<T>(o.lr), mu = static_cast<T>(o.momentum), wd = static_cast<T>(o.weight_decay);
  const T keep = static_cast<T>(1.0 - o.dampening);
  T* p = t.param;
  const T* g = t.grad;
  T* v = t.velocity;
  for (int64_t i = begin; i < end; ++i) {
    T d = g[i];
    if (o.weight_decay != 0.0) d = d + wd * p[i];
    if (v) {
      v[i] = t.first_step ? d : mu * v[i] + keep * d;
      d = o.nesterov ? d + mu * v[i] : v[i];
    }
    p[i] = p[i] - lr * d;
  }
}

// PyTorch's lerp(a, b, w) = a + w * (b - a), computed from the nearer end for accuracy.
template <class T>
T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <class T>
void adam_range(const AdamTensor<T>& t, int64_t begin, int64_t end, const AdamOptions& o) {
  // The bias corrections in double, as PyTorch computes them in Python, then rounded to T.
  const double correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(t.step));
  const double correction2 = 1.0 - std::pow(o.beta2, static_cast<double>(t.step));
  const T step_size = static_cast<T>(o.lr / correction1);
  const T correction2_sqrt = static_cast<T>(std::sqrt(correction2));
  const T eps = static_cast<T>(o.eps), wd = static_cast<T>(o.weight_decay);
  const T decoupled_scale = static_cast<T>(1.0 - o.lr * o.weight_decay);
  const T w1 = static_cast<T>(1.0 - o.beta1), beta2 = static_cast<T>(o.beta2), w2 = static_cast<T>(1.0 - o.beta2);
  T* p = t.param;
  const T* g = t.grad;
  T* m = t.exp_avg;
  T* s = t.exp_avg_sq;
  for (int64_t i = begin; i < end; ++i) {
    T d = g[i];
    if (o.weight_decay != 0.0) {
      if (o.decoupled_weight_decay) {
        p[i] = p[i] * decoupled_scale;
      } else {
        d = d + wd * p[i];
      }
    }
    m[i] = lerp(m[i], d, w1);
    s[i] = s[i] * beta2 + w2 * d * d;  // (w2 * d) * d, PyTorch's addcmul order
    p[i] = p[i] - step_size * (m[i] / (std::sqrt(s[i]) / correction2_sqrt + eps));
  }
}

}  // namespace

template <class T>
void sgd_step(const std::vector<SgdTensor<T>>& tensors, const SgdOptions& options) {
  for_each_element_range(tensors, [&](const SgdTensor<T>& t, int64_t begin, int64_t end) {
    sgd_range(t, begin, end, options);
  });
}

template <class T>
void adam_step(const std::vector<AdamTensor<T>>& tensors, const AdamOptions& options) {
  for (const AdamTensor<T>& t : tensors) {
    if (t.step < 1) throw std::invalid_argument("adam: a tensor's step count must be >= 1");
  }
  for_each_element_range(tensors, [&](const AdamTensor<T>& t, int64_t begin, int64_t end) {
    adam_range(t, begin, end, options);
  });
}

template void sgd_step<float>(const std::vector<SgdTensor<float>>&, const SgdOptions&);
template void sgd_step<double>(const std::vector<SgdTensor<double>>&, const SgdOptions&);
template void adam_step<float>(const std::vector<AdamTensor<float>>&, const AdamOptions&);
template void adam_step<double>(const std::vector<AdamTensor<double>>&, const AdamOptions&);

}  // namespace convkit
