// Normalization by statistics over groups of a channels-last array: BatchNorm, InstanceNorm, GroupNorm and
// LayerNorm are all this one operation on a different view of x.
//
// Shape legend: x is viewed as (N, P, G, Cg), contiguous: N independent samples, P pixels, G groups of Cg
// channels each (C = G * Cg channels per pixel). Statistics are taken per (n, g) over the P * Cg values of
// that sample and group; gamma and beta are per channel (C values).
//
//   BatchNorm    (N*spatial, C)  -> N = 1, P = N*spatial, G = C,     Cg = 1
//   InstanceNorm (N, spatial, C) -> N,     P = spatial,   G = C,     Cg = 1
//   GroupNorm    (N, spatial, C) -> N,     P = spatial,   G = groups, Cg = C / groups
//   LayerNorm    (M, K)          -> N = M, P = 1,         G = 1,     Cg = K (the last k axes, flattened)
//
//   statistics  mean[n, g], var[n, g] = biased variance (M2 / count), always computed in double
//   forward     y[n, p, c]  = (x - mean[n, g]) * inv_std[n, g] * gamma[c] + beta[c]
//   backward    dbeta[c]    = sum_{n, p} dy        dgamma[c] = sum_{n, p} dy * xhat
//               dx          = inv_std * (dy*gamma - mean_g(dy*gamma) - xhat * mean_g(dy*gamma*xhat))
//                             (with fixed statistics, e.g. BatchNorm in inference: dx = inv_std * dy*gamma)
//
// Every result is independent of the thread count, bit for bit (see norm.cc).
#pragma once
#include <cstdint>

namespace convkit {

struct NormLayout {
  std::int64_t samples, pixels, groups, group_channels;

  std::int64_t channels() const { return groups * group_channels; }
};

// Throws std::invalid_argument unless every size is >= 0 and groups, group_channels >= 1.
void check_layout(const NormLayout& layout);

// mean and var: (N, G) doubles, overwritten. A group of zero values gets mean 0 and var 0.
template <class T>
void norm_statistics(const NormLayout& layout, const T* x, double* mean, double* var);

// y (x's shape, overwritten). gamma and beta: (C,) or null (then 1 and 0).
template <class T>
void norm_forward(const NormLayout& layout, const T* x, const double* mean, const double* inv_std, const T* gamma,
                  const T* beta, T* y);

// norm_statistics, inv_std = 1 / sqrt(var + eps) and norm_forward in one call (mean, var, inv_std: (N, G),
// overwritten), with the same results bit for bit; with at least as many samples as threads, each thread
// normalises the samples it has just summed, while they are in cache.
template <class T>
void norm_normalize(const NormLayout& layout, const T* x, double eps, const T* gamma, const T* beta, T* y,
                    double* mean, double* var, double* inv_std);

// dx (x's shape), dgamma and dbeta ((C,), may be null) are overwritten. batch_statistics: the forward
// used mean and inv_std computed from x itself (so they depend on x); false: they were fixed inputs.
template <class T>
void norm_backward(const NormLayout& layout, const T* dy, const T* x, const double* mean, const double* inv_std,
                   const T* gamma, bool batch_statistics, T* dx, T* dgamma, T* dbeta);

}  // namespace convkit
