// Fused optimizer update drivers (formulas in optim.h).
//
// All tensors of a group are seen as one run of elements, cut into contiguous shares, one per thread: a
// thread's share may start in the middle of one tensor and end in another. The loops are plain elementwise
// code, one instantiation per combination of options, which the compiler vectorises (SGD; Adam's square root
// keeps it scalar); the SGD update is bound by memory traffic (5 accesses per value), not arithmetic.
#include "ops/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
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

// Calls f(std::true_type{}) or f(std::false_type{}): turns a run-time option into a compile-time one, so
// that each combination of options gets its own loop, free of branches, which the compiler vectorises.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// The hyperparameters rounded to T once, as PyTorch rounds a Python float for a float32 tensor.
template <class T>
struct SgdScalars {
  T lr, momentum, keep, weight_decay;  // keep = 1 - dampening

  explicit SgdScalars(const SgdOptions& o)
      : lr(static_cast<T>(o.lr)), momentum(static_cast<T>(o.momentum)), keep(static_cast<T>(1.0 - o.dampening)),
        weight_decay(static_cast<T>(o.weight_decay)) {}
};

template <class T, bool kDecay, bool kMomentum, bool kFirstStep, bool kNesterov>
void sgd_loop(const SgdTensor<T>& t, int64_t begin, int64_t end, const SgdScalars<T>& s) {
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict v = t.velocity;
  for (int64_t i = begin; i < end; ++i) {
    T d = g[i];
    if constexpr (kDecay) d = d + s.weight_decay * p[i];
    if constexpr (kMomentum) {
      const T velocity = kFirstStep ? d : s.momentum * v[i] + s.keep * d;
      v[i] = velocity;
      d = kNesterov ? d + s.momentum * velocity : velocity;
    }
    p[i] = p[i] - s.lr * d;
  }
}

template <class T>
void sgd_range(const SgdTensor<T>& t, int64_t begin, int64_t end, const SgdOptions& o) {
  const SgdScalars<T> scalars(o);
  with_flag(o.weight_decay != 0.0, [&](auto decay) {
    with_flag(t.velocity != nullptr, [&](auto momentum) {
      with_flag(t.first_step, [&](auto first_step) {
        with_flag(o.nesterov, [&](auto nesterov) {
          sgd_loop<T, decltype(decay)::value, decltype(momentum)::value, decltype(first_step)::value,
                  decltype(nesterov)::value>(t, begin, end, scalars);
        });
      });
    });
  });
}

// PyTorch's lerp(a, b, w) = a + w * (b - a), computed from the nearer end for accuracy.
template <class T, bool kWeightBelowHalf>
T lerp(T a, T b, T w) {
  return kWeightBelowHalf ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <class T>
struct AdamScalars {
  T step_size, correction2_sqrt, eps, weight_decay, decoupled_scale, w1, beta2, w2;

  AdamScalars(const AdamOptions& o, int64_t step) {
    // The bias corrections in double, as PyTorch computes them in Python, then rounded to T.
    const double correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
    const double correction2 = 1.0 - std::pow(o.beta2, static_cast<double>(step));
    step_size = static_cast<T>(o.lr / correction1);
    correction2_sqrt = static_cast<T>(std::sqrt(correction2));
    eps = static_cast<T>(o.eps);
    weight_decay = static_cast<T>(o.weight_decay);
    decoupled_scale = static_cast<T>(1.0 - o.lr * o.weight_decay);
    w1 = static_cast<T>(1.0 - o.beta1);
    beta2 = static_cast<T>(o.beta2);
    w2 = static_cast<T>(1.0 - o.beta2);
  }
};

// (The square root keeps this loop scalar: without -fno-math-errno the compiler must let it set errno.)
template <class T, bool kDecay, bool kDecoupled, bool kWeightBelowHalf>
void adam_loop(const AdamTensor<T>& t, int64_t begin, int64_t end, const AdamScalars<T>& c) {
  T* __restrict p = t.param;
  const T* __restrict g = t.grad;
  T* __restrict m = t.exp_avg;
  T* __restrict s = t.exp_avg_sq;
  for (int64_t i = begin; i < end; ++i) {
    T d = g[i];
    if constexpr (kDecay && kDecoupled) p[i] = p[i] * c.decoupled_scale;
    if constexpr (kDecay && !kDecoupled) d = d + c.weight_decay * p[i];
    m[i] = lerp<T, kWeightBelowHalf>(m[i], d, c.w1);
    s[i] = s[i] * c.beta2 + c.w2 * d * d;  // (w2 * d) * d, PyTorch's addcmul order
    p[i] = p[i] - c.step_size * (m[i] / (std::sqrt(s[i]) / c.correction2_sqrt + c.eps));
  }
}

template <class T>
void adam_range(const AdamTensor<T>& t, int64_t begin, int64_t end, const AdamOptions& o) {
  const AdamScalars<T> scalars(o, t.step);
  with_flag(o.weight_decay != 0.0, [&](auto decay) {
    with_flag(o.decoupled_weight_decay, [&](auto decoupled) {
      with_flag(scalars.w1 < T(0.5), [&](auto weight_below_half) {
        adam_loop<T, decltype(decay)::value, decltype(decoupled)::value, decltype(weight_below_half)::value>(
            t, begin, end, scalars);
      });
    });
  });
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
