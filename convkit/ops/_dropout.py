"""Regularisation by random dropping: dropout, spatial dropout, DropConnect and stochastic depth, each with its
backward.

All four are one C++ operation (csrc/ops/dropout.h) on a different view of the data: x viewed as (A, B, D)
and a bool mask (A, D) broadcast over B, kept values scaled by 1 / (1 - rate) ("inverted" dropout, so the
expectation is unchanged and inference needs no rescaling). The forward draws the mask from a
`convkit.random.Generator` and returns it; the backward takes it back (a bool mask is a quarter of a float32
activation's memory, and no generator state needs to be kept for the backward).

With training=False, or rate == 0, a forward is the identity: it returns its input itself (no copy) and
mask None, and draws no random numbers; a backward given mask None is the identity too. rate == 1 is
refused (every value dropped, and an infinite scale): remove the layer or branch instead.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C
from .._validate import as_float_array, check_bool, check_real, common_float_dtype, shown
from ..random import Generator, resolve, words_per_value


def _check_rate(rate) -> float:
    rate = check_real(rate, "rate")
    if not 0.0 <= rate < 1.0:
        hint = " (rate 1 would drop everything: remove the layer or branch instead)" if rate == 1.0 else ""
        raise ValueError(f"rate must be in [0, 1), got {shown(rate)}{hint}")
    return rate


def _check_mask(mask, shape: tuple) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"mask must be the bool numpy array the forward returned, got {shown(mask)}")
    if mask.shape != shape:
        raise ValueError(f"mask must have shape {shape}, got {mask.shape}")
    return np.ascontiguousarray(mask)


def _forward(x: np.ndarray, view: tuple, rate: float, generator: Optional[Generator],
             base: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(y, mask (A, D)) of the dropout of x viewed as (A, B, D); y = base + masked and scaled x."""
    x3 = np.ascontiguousarray(x).reshape(view)
    base3 = None if base is None else np.ascontiguousarray(base).reshape(view)
    y3 = np.empty_like(x3)
    mask = np.empty((view[0], view[2]), dtype=np.bool_)
    seed, first_block = resolve(generator).reserve(mask.size, words_per_value(mask.dtype))
    _C.dropout_forward(seed, first_block, rate, x3, base3, y3, mask)
    return y3.reshape(x.shape), mask


def _backward(dy: np.ndarray, view: tuple, mask: np.ndarray, rate: float) -> np.ndarray:
    """dx = dy masked (mask (A, D), broadcast over B of the (A, B, D) view) and scaled by 1 / (1 - rate)."""
    dy3 = np.ascontiguousarray(dy).reshape(view)
    dx3 = np.empty_like(dy3)
    _C.dropout_backward(dy3, mask.reshape(view[0], view[2]), rate, dx3)
    return dx3.reshape(dy.shape)


def _is_identity(rate: float, training) -> bool:
    return not check_bool(training, "training") or rate == 0.0


# ---- Dropout and DropConnect: one decision per element ----------------------------------------------------


def _elementwise(x, name: str, rate, training, generator) -> tuple[np.ndarray, Optional[np.ndarray]]:
    x = as_float_array(x, name)
    rate = _check_rate(rate)
    if _is_identity(rate, training):
        resolve(generator)
        return x, None
    y, mask = _forward(x, (1, 1, x.size), rate, generator)
    return y, mask.reshape(x.shape)


def _elementwise_backward(dy, name: str, mask, rate) -> np.ndarray:
    dy = as_float_array(dy, name)
    rate = _check_rate(rate)
    if mask is None:
        return dy
    return _backward(dy, (1, 1, dy.size), _check_mask(mask, dy.shape), rate)


def dropout(x, rate: float, *, training: bool = True,
            generator: Optional[Generator] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Inverted dropout of x (any shape): each element is kept with probability 1 - rate and scaled by
    1 / (1 - rate), or set to 0 (exactly, even if it is inf or NaN).

    Returns (y, mask): y has x's shape and dtype, mask is bool of x's shape (True = kept), for
    dropout_backward. training=False or rate=0: (x, None).
    """
    return _elementwise(x, "x", rate, training, generator)


def dropout_backward(dy, mask: Optional[np.ndarray], rate: float) -> np.ndarray:
    """dx = mask * dy / (1 - rate), with the mask dropout returned (None: dx = dy, returned itself)."""
    return _elementwise_backward(dy, "dy", mask, rate)


def drop_connect(w, rate: float, *, training: bool = True,
                 generator: Optional[Generator] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """DropConnect (Wan et al., 2013) on a weight array w of any shape (a Dense or Conv kernel): dropout of
    the weights instead of the activations. One mask per call: a layer draws it once per batch and computes
    with the returned weights.

    Returns (w_dropped, mask): w_dropped = mask * w / (1 - rate), of w's shape and dtype; mask bool of w's
    shape. training=False or rate=0: (w, None).
    """
    return _elementwise(w, "w", rate, training, generator)


def drop_connect_backward(dw_dropped, mask: Optional[np.ndarray], rate: float) -> np.ndarray:
    """The gradient with respect to w from the gradient with respect to the dropped weights:
    dw = mask * dw_dropped / (1 - rate) (mask None: dw_dropped itself)."""
    return _elementwise_backward(dw_dropped, "dw_dropped", mask, rate)


# ---- Spatial dropout: one decision per feature map ----------------------------------------------------------


def _spatial_view(x: np.ndarray, name: str) -> tuple:
    if not 3 <= x.ndim <= 5:
        raise ValueError(f"{name} must be (N, *spatial, C) with 1 to 3 spatial axes, got shape {x.shape}")
    return x.shape[0], int(np.prod(x.shape[1:-1])), x.shape[-1]


def spatial_dropout(x, rate: float, *, training: bool = True,
                    generator: Optional[Generator] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Spatial dropout (PyTorch's Dropout1d/2d/3d, Keras' SpatialDropout1D/2D/3D) of channels-last x
    (N, *spatial, C), 1 to 3 spatial axes: whole feature maps are dropped, one decision per (n, c), kept maps
    scaled by 1 / (1 - rate).

    Returns (y, mask): y of x's shape and dtype, mask bool (N, C). training=False or rate=0: (x, None).
    """
    x = as_float_array(x, "x")
    view = _spatial_view(x, "x")
    rate = _check_rate(rate)
    if _is_identity(rate, training):
        resolve(generator)
        return x, None
    return _forward(x, view, rate, generator)


def spatial_dropout_backward(dy, mask: Optional[np.ndarray], rate: float) -> np.ndarray:
    """dx = mask[n, c] * dy / (1 - rate) for dy (N, *spatial, C) and the (N, C) mask spatial_dropout
    returned (None: dy itself)."""
    dy = as_float_array(dy, "dy")
    view = _spatial_view(dy, "dy")
    rate = _check_rate(rate)
    if mask is None:
        return dy
    return _backward(dy, view, _check_mask(mask, (view[0], view[2])), rate)


# ---- Stochastic depth: one decision per sample ---------------------------------------------------------------


def _sample_view(x: np.ndarray, name: str) -> tuple:
    if x.ndim < 1:
        raise ValueError(f"{name} must have a batch axis, got a 0-d array")
    return x.shape[0], int(np.prod(x.shape[1:])), 1


def stochastic_depth(shortcut, branch, rate: float, *, training: bool = True,
                     generator: Optional[Generator] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Stochastic depth (Huang et al., 2016) of a residual block: y = shortcut + mask[n] * branch / (1 - rate),
    the branch of each sample n dropped with probability `rate` (torchvision's StochasticDepth, mode 'row').

    The kept branch is scaled by 1 / (1 - rate) in training, as torchvision does, so that inference adds the
    branch unscaled (y = shortcut + branch). (The paper instead scales the branch by 1 - rate at inference;
    the expectations agree.) shortcut and branch: (N, ...), one shape. Returns (y, mask (N,) bool).
    training=False or rate=0: (shortcut + branch, None).
    """
    shortcut = as_float_array(shortcut, "shortcut")
    branch = as_float_array(branch, "branch")
    view = _sample_view(branch, "branch")
    if shortcut.shape != branch.shape:
        raise ValueError(f"shortcut and branch must have one shape, got {shortcut.shape} and {branch.shape}")
    rate = _check_rate(rate)
    dtype = common_float_dtype(shortcut, branch)
    if _is_identity(rate, training):
        resolve(generator)
        return np.add(shortcut, branch, dtype=dtype), None
    y, mask = _forward(branch.astype(dtype, copy=False), view, rate, generator,
                       base=shortcut.astype(dtype, copy=False))
    return y, mask.reshape(view[0])


def stochastic_depth_backward(dy, mask: Optional[np.ndarray], rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(d_shortcut, d_branch) of stochastic_depth: d_shortcut = dy (returned itself),
    d_branch = mask[n] * dy / (1 - rate) (mask None: dy itself)."""
    dy = as_float_array(dy, "dy")
    view = _sample_view(dy, "dy")
    rate = _check_rate(rate)
    if mask is None:
        return dy, dy
    return dy, _backward(dy, view, _check_mask(mask, (view[0],)), rate)
