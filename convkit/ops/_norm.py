"""Normalization by statistics, channels-last: batch, layer, instance and group normalization, each with its
backward.

All four are one C++ operation on a different view of x (csrc/ops/norm.h): statistics per group of
values, then y = (x - mean) * inv_std * gamma + beta. LayerNorm, where each row of the last axes is its
own group, has its own driver (csrc/ops/short_rows_norm.h), which handles a row whole while it is in cache
(15-25x faster than the general driver on rows of 1K to 64K values, and more on short rows). The
statistics are computed in float64 whatever the data's dtype and returned as float64 `NormStats`, which the
backward functions take back.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from .. import _C
from .._validate import as_float_array, check_bool, check_positive_int, check_real, common_float_dtype, shown


class NormStats(NamedTuple):
    """The statistics a forward pass normalised with (float64): x_hat = (x - mean) * inv_std."""

    mean: np.ndarray
    inv_std: np.ndarray


def _check_data(x, name: str, min_ndim: int) -> np.ndarray:
    """x with at least min_ndim axes, the last one (the channels, or the last normalized axis) not empty."""
    x = as_float_array(x, name)
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last axis, got shape {x.shape}")
    return x


def _check_affine(value, name: str, shape: tuple, dtype: np.dtype) -> Optional[np.ndarray]:
    """gamma or beta: None, or an array of `shape`, returned contiguous and flattened in dtype."""
    if value is None:
        return None
    value = as_float_array(value, name)
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    return np.ascontiguousarray(value, dtype=dtype).reshape(-1)


def _check_eps(eps) -> float:
    eps = check_real(eps, "eps")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {shown(eps)}")
    return eps


def _check_stats(value, name: str, shape: tuple) -> np.ndarray:
    value = as_float_array(value, name)
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    return np.ascontiguousarray(value, dtype=np.float64)


def _check_dy(dy, x: np.ndarray) -> np.ndarray:
    dy = as_float_array(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy must have x's shape {x.shape}, got {dy.shape}")
    return dy


def _forward(x4, mean, inv_std, gamma, beta) -> np.ndarray:
    y4 = np.empty_like(x4)
    _C.norm_forward(x4, mean.reshape(x4.shape[::2]), inv_std.reshape(x4.shape[::2]), gamma, beta, y4)
    return y4


def _backward(dy4, x4, mean, inv_std, gamma, batch_statistics: bool):
    dx4 = np.empty_like(x4)
    dgamma = np.empty(x4.shape[2] * x4.shape[3], dtype=x4.dtype)
    dbeta = np.empty_like(dgamma)
    _C.norm_backward(dy4, x4, mean, inv_std, gamma, batch_statistics, dx4, dgamma, dbeta)
    return dx4, dgamma, dbeta


def _forward_inputs(x, view: tuple, gamma, beta, affine_shape: tuple):
    """x as its contiguous (N, P, G, Cg) view, and gamma and beta flattened, in their common dtype."""
    dtype = common_float_dtype(*(a for a in (x, gamma, beta) if a is not None))
    gamma = _check_affine(gamma, "gamma", affine_shape, dtype)
    beta = _check_affine(beta, "beta", affine_shape, dtype)
    return np.ascontiguousarray(x, dtype=dtype).reshape(view), gamma, beta


def _backward_inputs(dy, x, view: tuple, stats_shape: tuple, gamma, mean, inv_std, affine_shape: tuple):
    """(dy4, x4, mean, inv_std, gamma): dy and x as contiguous (N, P, G, Cg) views and gamma flattened, in
    their common dtype; the statistics as float64 (N, G)."""
    dy = _check_dy(dy, x)
    dtype = common_float_dtype(*(a for a in (dy, x, gamma) if a is not None))
    gamma = _check_affine(gamma, "gamma", affine_shape, dtype)
    mean = _check_stats(mean, "mean", stats_shape).reshape(view[::2])
    inv_std = _check_stats(inv_std, "inv_std", stats_shape).reshape(view[::2])
    return (np.ascontiguousarray(dy, dtype=dtype).reshape(view), np.ascontiguousarray(x, dtype=dtype).reshape(view),
            mean, inv_std, gamma)


def _grouped_forward(x, view: tuple, stats_shape: tuple, gamma, beta, eps, affine_shape: tuple,
                     fixed_statistics: Optional[tuple] = None):
    """Normalise x by statistics of its (N, P, G, Cg) view; returns (y, NormStats of stats_shape, biased
    variance of stats_shape). fixed_statistics: (mean, var) to use instead of x's own (BatchNorm inference)."""
    eps = _check_eps(eps)
    x4, gamma, beta = _forward_inputs(x, view, gamma, beta, affine_shape)
    if fixed_statistics is None:
        y4 = np.empty_like(x4)
        mean, var, inv_std = (np.empty(x4.shape[::2], dtype=np.float64) for _ in range(3))
        _C.norm_normalize(x4, eps, gamma, beta, y4, mean, var, inv_std)
    else:
        mean, var = (np.asarray(a, dtype=np.float64).reshape(x4.shape[::2]) for a in fixed_statistics)
        inv_std = 1.0 / np.sqrt(var + eps)
        y4 = _forward(x4, mean, inv_std, gamma, beta)
    y = y4.reshape(x.shape)
    return y, NormStats(mean.reshape(stats_shape), inv_std.reshape(stats_shape)), var.reshape(stats_shape)


def _grouped_backward(dy, x, view: tuple, stats_shape: tuple, gamma, mean, inv_std, affine_shape: tuple,
                      batch_statistics: bool = True):
    """(dx, dgamma, dbeta) of _grouped_forward; dgamma and dbeta have affine_shape."""
    dx4, dgamma, dbeta = _backward(*_backward_inputs(dy, x, view, stats_shape, gamma, mean, inv_std, affine_shape),
                                   batch_statistics)
    return dx4.reshape(x.shape), dgamma.reshape(affine_shape), dbeta.reshape(affine_shape)


# ---- BatchNorm -----------------------------------------------------------------------------------------


def _check_running(value, name: str, channels: int) -> Optional[np.ndarray]:
    """running_mean / running_var: None or a writeable float (C,) ndarray, updated in place."""
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 numpy array (it is updated in place), got {shown(value)}")
    if value.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), got {value.shape}")
    if not value.flags.writeable:
        raise ValueError(f"{name} must be writeable: it is updated in place")
    return value


def batch_norm(x, gamma=None, beta=None, *, running_mean=None, running_var=None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5) -> tuple[np.ndarray, NormStats]:
    """Batch normalization per channel of x (N, *spatial, C), 0 to 3 spatial axes.

    training=True: normalises with the batch's mean and biased variance over N and the spatial axes, and
    when running_mean / running_var are given updates them in place (PyTorch convention):
    running = (1 - momentum) * running + momentum * batch, the variance being the unbiased one.
    training=False: normalises with running_mean and running_var (both required).
    gamma, beta: (C,) or None (1 and 0). Returns (y, NormStats(mean, inv_std)), the statistics (C,) float64
    that batch_norm_backward takes.
    """
    x = _check_data(x, "x", 2)
    training = check_bool(training, "training")
    momentum = check_real(momentum, "momentum")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {shown(momentum)}")
    eps = _check_eps(eps)
    channels = x.shape[-1]
    running_mean = _check_running(running_mean, "running_mean", channels)
    running_var = _check_running(running_var, "running_var", channels)
    count = x.size // channels
    view = (1, count, channels, 1)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm with training=False needs running_mean and running_var")
        y, stats, _ = _grouped_forward(x, view, (channels,), gamma, beta, eps, (channels,),
                                       fixed_statistics=(running_mean, running_var))
        return y, stats
    if count < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, got x of shape {x.shape}")
    y, stats, var = _grouped_forward(x, view, (channels,), gamma, beta, eps, (channels,))
    if running_mean is not None:
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * stats.mean
    if running_var is not None:
        running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))
    return y, stats


def batch_norm_backward(dy, x, gamma, mean, inv_std, *, training: bool = True):
    """(dx, dgamma, dbeta) of batch_norm, from the NormStats it returned (mean, inv_std).

    training=True: the statistics were the batch's, so dx includes their dependence on x; training=False:
    they were the running statistics (constants). gamma None means 1.
    """
    x = _check_data(x, "x", 2)
    training = check_bool(training, "training")
    channels = x.shape[-1]
    count = x.size // channels
    return _grouped_backward(dy, x, (1, count, channels, 1), (channels,), gamma, mean, inv_std, (channels,),
                             batch_statistics=training)


# ---- LayerNorm, GroupNorm, InstanceNorm ----------------------------------------------------------------


def _check_normalized_ndim(normalized_ndim, x: np.ndarray) -> int:
    normalized_ndim = check_positive_int(normalized_ndim, "normalized_ndim")
    if normalized_ndim > x.ndim:
        raise ValueError(f"normalized_ndim must be <= x.ndim = {x.ndim}, got {normalized_ndim}")
    return normalized_ndim


def _layer_view(x: np.ndarray, normalized_ndim: int) -> tuple[tuple, tuple, tuple]:
    """(N, P, G, Cg) view, statistics shape and affine shape of a layer norm over the last axes."""
    leading, normalized = x.shape[:x.ndim - normalized_ndim], x.shape[x.ndim - normalized_ndim:]
    if 0 in normalized:
        raise ValueError(f"layer_norm needs non-empty normalized axes, got {normalized} of x's shape {x.shape}")
    return (math.prod(leading), 1, 1, math.prod(normalized)), leading, normalized


def layer_norm(x, normalized_ndim: int, gamma=None, beta=None, eps: float = 1e-5) -> tuple[np.ndarray, NormStats]:
    """Layer normalization over the last `normalized_ndim` axes of x (PyTorch's LayerNorm with
    normalized_shape = x.shape[-normalized_ndim:]). gamma, beta: that shape, or None (1 and 0).
    Returns (y, NormStats) with statistics of shape x.shape[:-normalized_ndim]."""
    x = _check_data(x, "x", 1)
    normalized_ndim = _check_normalized_ndim(normalized_ndim, x)
    view, stats_shape, affine_shape = _layer_view(x, normalized_ndim)
    eps = _check_eps(eps)
    x4, gamma, beta = _forward_inputs(x, view, gamma, beta, affine_shape)
    y4 = np.empty_like(x4)
    mean = np.empty(view[::2], dtype=np.float64)
    inv_std = np.empty_like(mean)
    _C.short_rows_norm_forward(x4, eps, gamma, beta, y4, mean, inv_std)
    return y4.reshape(x.shape), NormStats(mean.reshape(stats_shape), inv_std.reshape(stats_shape))


def layer_norm_backward(dy, x, normalized_ndim: int, gamma, mean, inv_std):
    """(dx, dgamma, dbeta) of layer_norm, from the NormStats it returned; gamma None means 1."""
    x = _check_data(x, "x", 1)
    normalized_ndim = _check_normalized_ndim(normalized_ndim, x)
    view, stats_shape, affine_shape = _layer_view(x, normalized_ndim)
    dy4, x4, mean, inv_std, gamma = _backward_inputs(dy, x, view, stats_shape, gamma, mean, inv_std, affine_shape)
    dx4 = np.empty_like(x4)
    dgamma = np.empty(view[3], dtype=x4.dtype)
    dbeta = np.empty_like(dgamma)
    _C.short_rows_norm_backward(dy4, x4, mean, inv_std, gamma, dx4, dgamma, dbeta)
    return dx4.reshape(x.shape), dgamma.reshape(affine_shape), dbeta.reshape(affine_shape)


def _group_view(x: np.ndarray, groups) -> tuple[int, tuple]:
    """groups, checked against x (N, *spatial, C), and the (N, P, G, Cg) view of a group norm."""
    groups = check_positive_int(groups, "groups")
    channels = x.shape[-1]
    if channels % groups:
        raise ValueError(f"groups must divide the {channels} channels of x, got {groups}")
    return groups, (x.shape[0], math.prod(x.shape[1:-1]), groups, channels // groups)


def group_norm(x, groups: int, gamma=None, beta=None, eps: float = 1e-5) -> tuple[np.ndarray, NormStats]:
    """Group normalization of x (N, *spatial, C), 0 to 3 spatial axes: per sample, statistics over the
    spatial axes and each group of C / groups consecutive channels. gamma, beta: (C,) or None.
    Returns (y, NormStats) with statistics of shape (N, groups)."""
    x = _check_data(x, "x", 2)
    groups, view = _group_view(x, groups)
    y, stats, _ = _grouped_forward(x, view, (x.shape[0], groups), gamma, beta, eps, (x.shape[-1],))
    return y, stats


def group_norm_backward(dy, x, groups: int, gamma, mean, inv_std):
    """(dx, dgamma, dbeta) of group_norm, from the NormStats it returned; gamma None means 1."""
    x = _check_data(x, "x", 2)
    groups, view = _group_view(x, groups)
    return _grouped_backward(dy, x, view, (x.shape[0], groups), gamma, mean, inv_std, (x.shape[-1],))


def instance_norm(x, gamma=None, beta=None, eps: float = 1e-5) -> tuple[np.ndarray, NormStats]:
    """Instance normalization of x (N, *spatial, C): per sample and channel, statistics over the spatial
    axes (group_norm with one channel per group). gamma, beta: (C,) or None. Returns (y, NormStats) with
    statistics of shape (N, C)."""
    x = _check_data(x, "x", 2)
    return group_norm(x, x.shape[-1], gamma, beta, eps)


def instance_norm_backward(dy, x, gamma, mean, inv_std):
    """(dx, dgamma, dbeta) of instance_norm, from the NormStats it returned; gamma None means 1."""
    x = _check_data(x, "x", 2)
    return group_norm_backward(dy, x, x.shape[-1], gamma, mean, inv_std)


# ---- Local response normalization ----------------------------------------------------------------------


def _check_lrn_options(size, alpha, beta, k) -> tuple:
    size = check_positive_int(size, "size")
    alpha, beta, k = check_real(alpha, "alpha"), check_real(beta, "beta"), check_real(k, "k")
    # k > 0 and alpha >= 0 keep the scale k + alpha / size * sum(x^2) positive, so y is finite.
    if k <= 0:
        raise ValueError(f"k must be > 0, got {shown(k)}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {shown(alpha)}")
    return size, alpha, beta, k


def local_response_norm(x, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> np.ndarray:
    """Local response normalization across the channels of x (N, *spatial, C), PyTorch's formula:

        y[c] = x[c] / (k + alpha / size * sum_{j = c - size//2}^{c + (size-1)//2} x[j]^2) ** beta

    channels outside [0, C) counting as zero. AlexNet used size=5, alpha=1e-4, beta=0.75, k=2."""
    x = _check_data(x, "x", 2)
    size, alpha, beta, k = _check_lrn_options(size, alpha, beta, k)
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    y2 = np.empty_like(x2)
    _C.lrn_forward(x2, y2, size, alpha, beta, k)
    return y2.reshape(x.shape)


def local_response_norm_backward(dy, x, size: int, alpha: float = 1e-4, beta: float = 0.75,
                                 k: float = 1.0) -> np.ndarray:
    """dx of local_response_norm(x, size, alpha, beta, k) for the output gradient dy."""
    x = _check_data(x, "x", 2)
    size, alpha, beta, k = _check_lrn_options(size, alpha, beta, k)
    dy = _check_dy(dy, x)
    dtype = common_float_dtype(dy, x)
    x2 = np.ascontiguousarray(x, dtype=dtype).reshape(-1, x.shape[-1])
    dx2 = np.empty_like(x2)
    _C.lrn_backward(np.ascontiguousarray(dy, dtype=dtype).reshape(x2.shape), x2, dx2, size, alpha, beta, k)
    return dx2.reshape(x.shape)
