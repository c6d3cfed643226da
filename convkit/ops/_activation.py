"""Activation functions, forward and backward: elementwise (relu, relu6 and clipped_relu, leaky_relu, prelu,
elu, sigmoid, tanh, gelu, hard_sigmoid, hard_swish), along an axis (softmax, log_softmax) and across channel
groups (maxout).

Every forward takes any float32/float64 array (non-contiguous ones are copied) and returns a new array of
the same dtype, or writes into `out=` when given; `out=x` runs in place. Backward functions take the
output gradient `dy` and what the forward saved: the output `y` for relu, relu6, clipped_relu, leaky_relu,
elu, sigmoid, tanh, softmax, log_softmax and linear (so that their forward may run in place), the input `x`
for gelu, hard_sigmoid, hard_swish, prelu and maxout. `ACTIVATION_BACKWARD_INPUT` says which, by name.

`activation(x, name, **params)` / `activation_backward(dy, saved, name, **params)` run the activations of
`ACTIVATIONS` by name, for layers built from a configuration.
"""
from __future__ import annotations

import numbers
from typing import Callable, Optional

import numpy as np

from .. import _C
from .._validate import as_float_array, check_positive_int, check_real, common_float_dtype, shown
from ..cuda.tensor import Tensor

# Activations run by name, Keras' names. prelu is not here: its slope is a learned parameter array.
ACTIVATIONS = ("linear", "relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
               "hard_sigmoid", "hard_swish")

GELU_APPROXIMATIONS = ("none", "tanh")


# ---- argument checks and the plumbing every forward shares ------------------------------------------------


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b are the very same elements (same start, shape and strides)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.shape == b.shape
            and a.strides == b.strides)


def _check_out(out, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array or None, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out must have shape {shape} and dtype {dtype}, got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _forward(x: np.ndarray, out, run: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
    """run(src, dst) on C-contiguous x and a C-contiguous destination: `out` itself when that is safe (it
    is x's own memory, or shares none with it), else a new array that is then copied into `out`."""
    src = np.asarray(x, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    if out is None:
        dst = np.empty_like(src)
        run(src, dst)
        return dst
    out = _check_out(out, x.shape, x.dtype)
    if out.flags.c_contiguous and (_same_memory(out, src) or not np.may_share_memory(out, src)):
        run(src, out)
        return out
    dst = np.empty_like(src)
    run(src, dst)
    out[...] = dst
    return out


def _check_dy(dy, saved: np.ndarray) -> np.ndarray:
    dy = as_float_array(dy, "dy")
    if dy.shape != saved.shape:
        raise ValueError(f"dy must have the shape {saved.shape} of the saved array, got {dy.shape}")
    return dy


def _gradient_operands(dy, saved, saved_name: str) -> tuple[np.ndarray, np.ndarray]:
    """dy and the saved x or y, checked, C-contiguous, in their common dtype."""
    saved = as_float_array(saved, saved_name)
    dy = _check_dy(dy, saved)
    dtype = common_float_dtype(dy, saved)
    return np.asarray(dy, dtype=dtype, order="C"), np.asarray(saved, dtype=dtype, order="C")


def _check_alpha(alpha, name: str = "alpha") -> float:
    """A slope for negative inputs; >= 0 keeps the function monotonic, so y tells the sign of x (the
    backward works from y)."""
    alpha = check_real(alpha, name)
    if alpha < 0:
        raise ValueError(f"{name} must be >= 0, got {shown(alpha)}")
    return alpha


def _check_axis(axis, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {shown(axis)}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array of {ndim} axes")
    return int(axis) % ndim


def _check_approximate(approximate) -> str:
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {shown(approximate)}")
    return approximate


# ---- elementwise ----------------------------------------------------------------------------------------


def _pointwise(x, kind: str, alpha: float, out) -> np.ndarray:
    if isinstance(x, Tensor):  # the public ops are the CUDA ones too: see convkit/cuda/_ops.py
        from ..cuda import _ops

        return _ops.pointwise(x, kind, alpha, out)
    x = as_float_array(x, "x")
    return _forward(x, out, lambda src, dst: _C.pointwise_forward(src, dst, kind, alpha))


def _pointwise_backward(dy, saved, saved_name: str, kind: str, alpha: float) -> np.ndarray:
    if isinstance(saved, Tensor):
        from ..cuda import _ops

        return _ops.pointwise_backward(dy, saved, saved_name, kind, alpha)
    dy, saved = _gradient_operands(dy, saved, saved_name)
    dx = np.empty_like(saved)
    _C.pointwise_backward(dy, saved, dx, kind, alpha)
    return dx


def relu(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """max(x, 0), any shape; NaN stays NaN. out=x runs in place."""
    return _pointwise(x, "relu", 0.0, out)


def relu_backward(dy, y) -> np.ndarray:
    """dx = dy where y > 0, else 0 (0 at x = 0), from relu's output y (same shape as dy)."""
    return _pointwise_backward(dy, y, "y", "relu", 0.0)


def _check_max_value(max_value) -> float:
    max_value = check_real(max_value, "max_value")
    if not max_value > 0:
        raise ValueError(f"max_value must be > 0, got {shown(max_value)}")
    return max_value


def clipped_relu(x, max_value: float, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """min(max(x, 0), max_value) (max_value > 0), any shape; NaN stays NaN. out=x runs in place."""
    return _pointwise(x, "clipped_relu", _check_max_value(max_value), out)


def clipped_relu_backward(dy, y, max_value: float) -> np.ndarray:
    """dx = dy where 0 < y < max_value, else 0 (0 at both kinks, as PyTorch), from clipped_relu's output y."""
    return _pointwise_backward(dy, y, "y", "clipped_relu", _check_max_value(max_value))


def relu6(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """min(max(x, 0), 6) (MobileNet v1/v2), any shape. out=x runs in place."""
    return clipped_relu(x, 6.0, out=out)


def relu6_backward(dy, y) -> np.ndarray:
    """dx = dy where 0 < y < 6, else 0, from relu6's output y."""
    return clipped_relu_backward(dy, y, 6.0)


def leaky_relu(x, alpha: float = 0.01, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """x where x > 0, else alpha * x (alpha >= 0), any shape. out=x runs in place."""
    return _pointwise(x, "leaky_relu", _check_alpha(alpha), out)


def leaky_relu_backward(dy, y, alpha: float = 0.01) -> np.ndarray:
    """dx = dy where y > 0, else alpha * dy, from leaky_relu's output y."""
    return _pointwise_backward(dy, y, "y", "leaky_relu", _check_alpha(alpha))


def elu(x, alpha: float = 1.0, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """x where x > 0, else alpha * (exp(x) - 1) (alpha >= 0), any shape. out=x runs in place."""
    return _pointwise(x, "elu", _check_alpha(alpha), out)


def elu_backward(dy, y, alpha: float = 1.0) -> np.ndarray:
    """dx = dy where y > 0, else dy * (y + alpha) (= dy * alpha * exp(x)), from elu's output y."""
    return _pointwise_backward(dy, y, "y", "elu", _check_alpha(alpha))


def sigmoid(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """1 / (1 + exp(-x)), any shape, without overflow for large |x|. out=x runs in place."""
    return _pointwise(x, "sigmoid", 0.0, out)


def sigmoid_backward(dy, y) -> np.ndarray:
    """dx = dy * y * (1 - y), from sigmoid's output y."""
    return _pointwise_backward(dy, y, "y", "sigmoid", 0.0)


def tanh(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """tanh(x), any shape. out=x runs in place."""
    return _pointwise(x, "tanh", 0.0, out)


def tanh_backward(dy, y) -> np.ndarray:
    """dx = dy * (1 - y^2), from tanh's output y."""
    return _pointwise_backward(dy, y, "y", "tanh", 0.0)


def _gelu_kind(approximate) -> str:
    return "gelu" if _check_approximate(approximate) == "none" else "gelu_tanh"


def gelu(x, approximate: str = "none", *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """GELU, any shape. approximate='none': x * Phi(x), Phi the standard normal CDF (the erf form);
    'tanh': x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) (BERT, ConvNeXt). out=x runs in place."""
    return _pointwise(x, _gelu_kind(approximate), 0.0, out)


def gelu_backward(dy, x, approximate: str = "none") -> np.ndarray:
    """dx of gelu, from its input x."""
    return _pointwise_backward(dy, x, "x", _gelu_kind(approximate), 0.0)


def hard_sigmoid(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """MobileNetV3's relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1), any shape. out=x runs in place.
    (Keras 2 used a slope of 0.2 instead of 1/6.)"""
    return _pointwise(x, "hard_sigmoid", 0.0, out)


def hard_sigmoid_backward(dy, x) -> np.ndarray:
    """dx = dy / 6 where -3 < x < 3, else 0, from hard_sigmoid's input x."""
    return _pointwise_backward(dy, x, "x", "hard_sigmoid", 0.0)


def hard_swish(x, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """MobileNetV3's x * relu6(x + 3) / 6, any shape. out=x runs in place."""
    return _pointwise(x, "hard_swish", 0.0, out)


def hard_swish_backward(dy, x) -> np.ndarray:
    """dx = 0 for x < -3, dy * (2x + 3) / 6 for -3 <= x <= 3, dy for x > 3, from hard_swish's input x."""
    return _pointwise_backward(dy, x, "x", "hard_swish", 0.0)


# ---- PReLU ---------------------------------------------------------------------------------------------


def _prelu_operands(x, slope) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """x (..., C) and a slope of shape (C,), (1,) or () checked; the slope flat, contiguous."""
    x = as_float_array(x, "x")
    slope = as_float_array(slope, "slope")
    if x.ndim < 1:
        raise ValueError(f"x must have at least one axis (the channels), got shape {x.shape}")
    channels = x.shape[-1]
    if slope.shape not in ((channels,), (1,), ()):
        raise ValueError(f"slope must have shape ({channels},) (one per channel of x), (1,) or () (shared), "
                         f"got {slope.shape}")
    dtype = common_float_dtype(x, slope)
    return x, np.asarray(slope, dtype=dtype, order="C").reshape(-1), dtype


def _rows(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """a (non-empty) as a C-contiguous (R, C) array of dtype, C its last axis."""
    return np.asarray(a, dtype=dtype, order="C").reshape(-1, a.shape[-1])


def prelu(x, slope, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """x where x > 0, else slope * x, with a learned slope per channel (the last axis of x (..., C)):
    slope (C,), or one shared slope (1,) or (). Computes in float64 if x or slope is float64; out=x runs
    in place."""
    x, slope, dtype = _prelu_operands(x, slope)
    x = x.astype(dtype, copy=False)

    def run(src: np.ndarray, dst: np.ndarray) -> None:
        if x.size:
            _C.prelu_forward(src.reshape(-1, x.shape[-1]), slope, dst.reshape(-1, x.shape[-1]))

    return _forward(x, out, run)


def prelu_backward(dy, x, slope) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dslope) of prelu, from its input x: dx = dy where x > 0, else slope * dy;
    dslope = sum of dy * x over the values x <= 0 of each channel (of all values for a shared slope),
    with slope's shape, summed in float64 in an order fixed by the shape."""
    slope_shape = np.shape(slope)
    x, slope_flat, _ = _prelu_operands(x, slope)
    dy = _check_dy(dy, x)
    dtype = common_float_dtype(dy, x, slope_flat)
    slope_flat = slope_flat.astype(dtype, copy=False)
    dx = np.zeros(x.shape, dtype)
    dslope = np.zeros(slope_flat.shape, dtype)
    if x.size:
        _C.prelu_backward(_rows(dy, dtype), _rows(x, dtype), slope_flat, dx.reshape(-1, x.shape[-1]), dslope)
    return dx, dslope.reshape(slope_shape)


# ---- softmax -------------------------------------------------------------------------------------------


def _axis_view(shape: tuple, axis: int) -> tuple[int, int, int]:
    """(outer, L, inner) of a C-contiguous array of `shape` for an op along `axis`."""
    return int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))


def _softmax(x, axis, log: bool, out) -> np.ndarray:
    x = as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d array")
    view = _axis_view(x.shape, _check_axis(axis, x.ndim))
    return _forward(x, out, lambda src, dst: _C.softmax_forward(src.reshape(view), dst.reshape(view), log))


def _softmax_backward(dy, y, axis, log: bool) -> np.ndarray:
    dy, y = _gradient_operands(dy, y, "y")
    if y.ndim == 0:
        raise ValueError("y must have at least one axis, got a 0-d array")
    view = _axis_view(y.shape, _check_axis(axis, y.ndim))
    dx = np.empty_like(y)
    _C.softmax_backward(dy.reshape(view), y.reshape(view), dx.reshape(view), log)
    return dx


def softmax(x, axis: int = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along `axis`, the sum in float64. A NaN makes its whole slice NaN;
    a slice holding +inf gives its limit (1 / count at the +inf entries, 0 elsewhere); a slice of only
    -inf gives NaN. out=x runs in place."""
    return _softmax(x, axis, False, out)


def softmax_backward(dy, y, axis: int = -1) -> np.ndarray:
    """dx = y * (dy - sum(dy * y)) along `axis`, from softmax's output y."""
    return _softmax_backward(dy, y, axis, False)


def log_softmax(x, axis: int = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """x - max - log(sum(exp(x - max))) along `axis`, the sum in float64; special values as softmax
    (-log(count) at +inf entries, -inf elsewhere). out=x runs in place."""
    return _softmax(x, axis, True, out)


def log_softmax_backward(dy, y, axis: int = -1) -> np.ndarray:
    """dx = dy - exp(y) * sum(dy) along `axis`, from log_softmax's output y."""
    return _softmax_backward(dy, y, axis, True)


# ---- maxout --------------------------------------------------------------------------------------------


def _maxout_view(x: np.ndarray, k) -> tuple[int, tuple]:
    k = check_positive_int(k, "k")
    if x.ndim < 1:
        raise ValueError(f"x must have at least one axis, got shape {x.shape}")
    if x.shape[-1] % k:
        raise ValueError(f"k must divide the last axis of x, got k={k} for x of shape {x.shape}")
    units = x.shape[-1] // k
    return k, (int(np.prod(x.shape[:-1])), units, k)


def maxout(x, k: int) -> np.ndarray:
    """Maxout over k pieces: x (..., C * k) -> y (..., C), y[..., c] = max(x[..., c*k : (c+1)*k]) (the k
    pieces of a unit are consecutive channels, as in Keras/TensorFlow). NaN propagates."""
    x = as_float_array(x, "x")
    k, view = _maxout_view(x, k)
    y = np.empty(view[:2], x.dtype)
    _C.maxout_forward(np.asarray(x, order="C").reshape(view), y)
    return y.reshape(*x.shape[:-1], view[1])


def maxout_backward(dy, x, k: int) -> np.ndarray:
    """dx (x's shape) of maxout, from its input x: dy goes to the maximal piece of each unit (the first
    one on ties, the first NaN if any), 0 to the others."""
    x = as_float_array(x, "x")
    k, view = _maxout_view(x, k)
    dy = as_float_array(dy, "dy")
    if dy.shape != (*x.shape[:-1], view[1]):
        raise ValueError(f"dy must have shape {(*x.shape[:-1], view[1])}, got {dy.shape}")
    dtype = common_float_dtype(dy, x)
    dx = np.empty(view, dtype)
    _C.maxout_backward(np.asarray(dy, dtype=dtype, order="C").reshape(view[:2]),
                       np.asarray(x, dtype=dtype, order="C").reshape(view), dx)
    return dx.reshape(x.shape)


# ---- by name -------------------------------------------------------------------------------------------

# name -> (forward(x, out, **params), backward(dy, saved, **params), what the backward takes)
_BY_NAME = {
    "linear": (lambda x, out: _pointwise(x, "linear", 0.0, out),
               lambda dy, y: _pointwise_backward(dy, y, "y", "linear", 0.0), "y"),
    "relu": (lambda x, out: relu(x, out=out), relu_backward, "y"),
    "relu6": (lambda x, out: relu6(x, out=out), relu6_backward, "y"),
    "leaky_relu": (lambda x, out, alpha=0.01: leaky_relu(x, alpha, out=out), leaky_relu_backward, "y"),
    "elu": (lambda x, out, alpha=1.0: elu(x, alpha, out=out), elu_backward, "y"),
    "sigmoid": (lambda x, out: sigmoid(x, out=out), sigmoid_backward, "y"),
    "tanh": (lambda x, out: tanh(x, out=out), tanh_backward, "y"),
    "gelu": (lambda x, out, approximate="none": gelu(x, approximate, out=out), gelu_backward, "x"),
    "softmax": (lambda x, out, axis=-1: softmax(x, axis, out=out), softmax_backward, "y"),
    "log_softmax": (lambda x, out, axis=-1: log_softmax(x, axis, out=out), log_softmax_backward, "y"),
    "hard_sigmoid": (lambda x, out: hard_sigmoid(x, out=out), hard_sigmoid_backward, "x"),
    "hard_swish": (lambda x, out: hard_swish(x, out=out), hard_swish_backward, "x"),
}

# name -> "y" if activation_backward takes the forward's output, "x" if its input.
ACTIVATION_BACKWARD_INPUT = {name: takes for name, (_, _, takes) in _BY_NAME.items()}

_PARAMETERS = {"leaky_relu": ("alpha",), "elu": ("alpha",), "gelu": ("approximate",), "softmax": ("axis",),
               "log_softmax": ("axis",)}


def _lookup(name, params: dict) -> tuple:
    if name not in _BY_NAME:
        raise ValueError(f"unknown activation {shown(name)}; known: {', '.join(ACTIVATIONS)}")
    unknown = sorted(set(params) - set(_PARAMETERS.get(name, ())))
    if unknown:
        allowed = ", ".join(_PARAMETERS.get(name, ())) or "none"
        raise TypeError(f"activation {shown(name)} takes no parameter {shown(unknown[0])} (its parameters: {allowed})")
    return _BY_NAME[name]


def activation(x, name: str, *, out: Optional[np.ndarray] = None, **params) -> np.ndarray:
    """The activation `name` (one of ACTIVATIONS) of x, with its parameters: alpha (leaky_relu, elu),
    approximate (gelu), axis (softmax, log_softmax). 'linear' is the identity (a copy, or x into out)."""
    forward, _, _ = _lookup(name, params)
    return forward(x, out, **params)


def activation_backward(dy, saved, name: str, **params) -> np.ndarray:
    """dx of activation(x, name, **params) for the output gradient dy; `saved` is the forward's output y
    or its input x, as ACTIVATION_BACKWARD_INPUT[name] says."""
    _, backward, _ = _lookup(name, params)
    return backward(dy, saved, **params)
