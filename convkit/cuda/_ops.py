"""The CUDA implementations of convkit's functional ops, called by convkit.ops when given Tensors
(convkit/cuda/dispatch.py). Same names, signatures, validation and results as the host ops, with Tensors
in and out; options the GPU path does not implement raise ValueError naming them.

Shapes and options are checked here with the host ops' own checkers (conv_spec, the pooling windows...),
before any kernel runs.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Optional, Union

import numpy as np

from .._validate import check_bool, check_real
from ..conv_spec import IntOrTuple, Padding, conv_spec
from ..ops import _activation as _act
from ..ops._checks import check_activation
from ..ops._conv import GRADIENTS, _check_need
from ..ops._dropout import _check_rate
from ..ops._loss import DEFAULT_IGNORE_INDEX, _check_reduction
from ..ops._norm import NormStats
from ..ops._pool import _adaptive_axes, _check_x_shape, _global, _output_shape, _sliding_axes
from ..pool_spec import core_windows
from ..random import Generator, resolve, words_per_value
from . import _backend
from .tensor import Tensor, empty, to_device

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
NULL = 0  # a null device pointer


# ---- checks ----------------------------------------------------------------------------------------------


def _float_tensor(value, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a convkit.Tensor here (the other operands are on cuda), got "
                        f"{type(value).__name__}")
    if value.dtype not in FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 Tensor, got dtype {value.dtype}")
    return value


def _same_dtype(dtype: np.dtype, **tensors) -> None:
    for name, t in tensors.items():
        if t is not None and t.dtype != dtype:
            raise TypeError(f"{name} must have dtype {dtype} like the other operands, got {t.dtype} (on cuda, "
                            "operands are not converted: mixing float32 and float64 raises)")


def _shape(t: Optional[Tensor], name: str, shape: tuple) -> None:
    if t is not None and t.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {t.shape}")


def _vector(value, name: str, length: int, dtype: np.dtype) -> Optional[Tensor]:
    if value is None:
        return None
    value = _float_tensor(value, name)
    _same_dtype(dtype, **{name: value})
    _shape(value, name, (length,))
    return value


def _pointer(t: Optional[Tensor]) -> int:
    return NULL if t is None else t.data_ptr


def _lifted(values: tuple, fill: int) -> list[int]:
    """Per-axis values lifted to the core's 3 axes (D, H, W)."""
    return [fill] * (3 - len(values)) + [int(v) for v in values]


# ---- GEMM ------------------------------------------------------------------------------------------------


def gemm(a, b, c=None, *, alpha: float = 1.0, beta: float = 0.0, transpose_a: bool = False,
         transpose_b: bool = False, bias=None, activation: Optional[str] = None, negative_slope: float = 0.01):
    """ops.gemm on cuda: 2-D Tensors (a 1-D a is a row, a 1-D b a column); c updated in place when given."""
    a, b = _float_tensor(a, "a"), _float_tensor(b, "b")
    _same_dtype(a.dtype, b=b)
    transpose_a, transpose_b = check_bool(transpose_a, "transpose_a"), check_bool(transpose_b, "transpose_b")
    alpha, beta = check_real(alpha, "alpha"), check_real(beta, "beta")
    negative_slope = check_real(negative_slope, "negative_slope")
    activation = check_activation(activation)
    a2 = a.reshape(1, a.size) if a.ndim == 1 else a
    b2 = b.reshape(b.size, 1) if b.ndim == 1 else b
    for name, t in (("a", a2), ("b", b2)):
        if t.ndim != 2:
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {t.shape}")
    m, k = a2.shape[::-1] if transpose_a else a2.shape
    k_b, n = b2.shape[::-1] if transpose_b else b2.shape
    if k != k_b:
        raise ValueError(f"inner dimensions differ: op(a) has shape {(m, k)} and op(b) has shape {(k_b, n)} "
                         f"(a.shape={a.shape}, b.shape={b.shape}, transpose_a={transpose_a}, "
                         f"transpose_b={transpose_b})")
    bias = _vector(bias, "bias", n, a.dtype)
    if c is None:
        if beta != 0.0:
            raise ValueError(f"beta={beta} reads c, but no c was given")
        c = empty((m, n), a.dtype)
    else:
        c = _float_tensor(c, "c")
        _same_dtype(a.dtype, c=c)
        _shape(c, "c", (m, n))
        if c.data_ptr in (a.data_ptr, b.data_ptr) and c.size:
            raise ValueError("c must not overlap a or b")
    _backend.module().gemm(a.dtype.name, a2.data_ptr, transpose_a, b2.data_ptr, transpose_b, c.data_ptr, m, n, k,
                           alpha, beta, _pointer(bias), activation, negative_slope)
    return c


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """ops.matmul on cuda."""
    result = gemm(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    shape = result.shape
    if a.ndim == 1:
        shape = shape[1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return result.reshape(shape)


# ---- convolution -----------------------------------------------------------------------------------------


def _conv_geometry(spec, batch: int) -> dict:
    return {"batch": batch, "in_channels": spec.in_channels, "out_channels": spec.out_channels,
            "groups": spec.groups, "in": _lifted(spec.in_spatial, 1), "out": _lifted(spec.out_spatial, 1),
            "kernel": _lifted(spec.kernel_size, 1), "stride": _lifted(spec.stride, 1),
            "dilation": _lifted(spec.dilation, 1), "pad_before": _lifted(spec.pad_before, 0)}


def _zero_padding_only(padding_mode: str) -> None:
    if padding_mode != "zeros":
        raise ValueError(f"padding_mode={padding_mode!r} is not implemented on cuda (only 'zeros')")


def conv(x, w, b=None, *, stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
         groups: int = 1, padding_mode: str = "zeros", activation: Optional[str] = None,
         negative_slope: float = 0.01):
    """ops.conv on cuda (zero padding)."""
    x, w = _float_tensor(x, "x"), _float_tensor(w, "w")
    _same_dtype(x.dtype, w=w)
    spec = conv_spec(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     padding_mode=padding_mode)
    _zero_padding_only(spec.padding_mode)
    activation = check_activation(activation)
    negative_slope = check_real(negative_slope, "negative_slope")
    b = _vector(b, "b", spec.out_channels, x.dtype)
    y = empty((x.shape[0], *spec.out_spatial, spec.out_channels), x.dtype)
    _backend.module().conv_forward(x.dtype.name, _conv_geometry(spec, x.shape[0]), x.data_ptr, w.data_ptr,
                                   _pointer(b), y.data_ptr, activation, negative_slope)
    return y


def _conv_of_rank(rank: int):
    def conv_r(x, w, b=None, **options):
        if x.ndim != rank + 2:
            raise ValueError(f"conv{rank}d expects x of rank {rank + 2} (N, *{rank} spatial axes, C), "
                             f"got ndim={x.ndim}")
        return conv(x, w, b, **options)

    conv_r.__name__ = f"conv{rank}d"
    return conv_r


conv1d, conv2d, conv3d = (_conv_of_rank(r) for r in (1, 2, 3))


def conv_backward(dy, x, w, *, stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
                  groups: int = 1, padding_mode: str = "zeros", need: Union[str, Iterable[str]] = GRADIENTS):
    """ops.conv_backward on cuda: (dx, dw, db), None for what `need` leaves out."""
    dy, x, w = _float_tensor(dy, "dy"), _float_tensor(x, "x"), _float_tensor(w, "w")
    _same_dtype(x.dtype, w=w, dy=dy)
    spec = conv_spec(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     padding_mode=padding_mode)
    _zero_padding_only(spec.padding_mode)
    need = _check_need(need)
    _shape(dy, "dy", (x.shape[0], *spec.out_spatial, spec.out_channels))
    geometry, module, dtype = _conv_geometry(spec, x.shape[0]), _backend.module(), x.dtype.name
    dx = dw = db = None
    if "x" in need:
        dx = empty(x.shape, x.dtype)
        module.conv_backward_data(dtype, geometry, dy.data_ptr, w.data_ptr, dx.data_ptr)
    if "b" in need:
        db = empty((spec.out_channels,), x.dtype)
    if "w" in need:
        dw = empty(w.shape, x.dtype)
        module.conv_backward_weights(dtype, geometry, dy.data_ptr, x.data_ptr, dw.data_ptr, _pointer(db))
    elif db is not None:
        module.bias_gradient(dtype, dy.size // spec.out_channels, spec.out_channels, dy.data_ptr, db.data_ptr)
    return dx, dw, db


# ---- pooling ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _device_windows(core: tuple) -> Tensor:
    """The window tables of `core` (3 axes of (begins, ends, padded counts, step)) on the device, as the
    kernels read them. Cached: a host-to-device copy from pageable memory waits for the GPU, which a layer
    called with the same shapes every step should not pay."""
    return to_device(np.concatenate([np.concatenate([a[0], a[1], a[2]]) for a in core]).astype(np.int64))


def _pool_geometry(x_shape: tuple, axes) -> dict:
    core = tuple(tuple(a) for a in core_windows(axes))
    return {"batch": x_shape[0], "channels": x_shape[-1], "in": _lifted(x_shape[1:-1], 1),
            "out": [len(a[0]) for a in core], "step": [int(a[3]) for a in core],
            "windows": _device_windows(core).data_ptr}


def _max_forward(x: Tensor, axes, return_indices):
    return_indices = check_bool(return_indices, "return_indices")
    shape = _output_shape(x.shape, axes)
    y = empty(shape, x.dtype)
    indices = empty(shape, np.int64) if return_indices else None
    geometry = _pool_geometry(x.shape, axes)
    _backend.module().max_pool_forward(x.dtype.name, geometry, x.data_ptr, y.data_ptr, _pointer(indices))
    return (y, indices) if return_indices else y


def _max_backward(dy, x: Tensor, axes, indices) -> Tensor:
    dy = _float_tensor(dy, "dy")
    _same_dtype(x.dtype, dy=dy)
    shape = _output_shape(x.shape, axes)
    _shape(dy, "dy", shape)
    if indices is None:
        indices = _max_forward(x, axes, True)[1]
    elif not isinstance(indices, Tensor) or indices.dtype != np.int64 or indices.shape != shape:
        raise ValueError(f"indices must be the int64 Tensor of shape {shape} max_pool returned, got {indices!r}")
    dx = empty(x.shape, x.dtype)
    geometry = _pool_geometry(x.shape, axes)
    _backend.module().max_pool_backward(x.dtype.name, geometry, dy.data_ptr, indices.data_ptr, dx.data_ptr)
    return dx


def _avg_forward(x: Tensor, axes, count_include_pad) -> Tensor:
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    y = empty(_output_shape(x.shape, axes), x.dtype)
    geometry = _pool_geometry(x.shape, axes)
    _backend.module().avg_pool_forward(x.dtype.name, geometry, x.data_ptr, y.data_ptr, count_include_pad)
    return y


def _avg_backward(dy: Tensor, x_shape: tuple, axes, count_include_pad) -> Tensor:
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    _shape(dy, "dy", _output_shape(x_shape, axes))
    dx = empty(x_shape, dy.dtype)
    geometry = _pool_geometry(x_shape, axes)
    _backend.module().avg_pool_backward(dy.dtype.name, geometry, dy.data_ptr, dx.data_ptr, count_include_pad)
    return dx


def max_pool(x, pool_size: IntOrTuple, *, stride=None, padding: Padding = "valid", dilation: IntOrTuple = 1,
             ceil_mode: bool = False, return_indices: bool = False):
    """ops.max_pool on cuda."""
    x = _float_tensor(x, "x")
    return _max_forward(x, _sliding_axes(x.shape, pool_size, stride, padding, dilation, ceil_mode), return_indices)


def max_pool_backward(dy, x, pool_size: IntOrTuple, *, stride=None, padding: Padding = "valid",
                      dilation: IntOrTuple = 1, ceil_mode: bool = False, indices=None):
    """ops.max_pool_backward on cuda."""
    x = _float_tensor(x, "x")
    return _max_backward(dy, x, _sliding_axes(x.shape, pool_size, stride, padding, dilation, ceil_mode), indices)


def avg_pool(x, pool_size: IntOrTuple, *, stride=None, padding: Padding = "valid", ceil_mode: bool = False,
             count_include_pad: bool = True):
    """ops.avg_pool on cuda."""
    x = _float_tensor(x, "x")
    return _avg_forward(x, _sliding_axes(x.shape, pool_size, stride, padding, 1, ceil_mode), count_include_pad)


def avg_pool_backward(dy, x_shape, pool_size: IntOrTuple, *, stride=None, padding: Padding = "valid",
                      ceil_mode: bool = False, count_include_pad: bool = True):
    """ops.avg_pool_backward on cuda."""
    x_shape = _check_x_shape(x_shape)
    axes = _sliding_axes(x_shape, pool_size, stride, padding, 1, ceil_mode)
    return _avg_backward(_float_tensor(dy, "dy"), x_shape, axes, count_include_pad)


def _pool_of_rank(pool, rank: int):
    def pool_r(x, pool_size, **options):
        if x.ndim != rank + 2:
            raise ValueError(f"{pool_r.__name__} expects x of rank {rank + 2} (N, *{rank} spatial axes, C), "
                             f"got ndim={x.ndim}")
        return pool(x, pool_size, **options)

    pool_r.__name__ = f"{pool.__name__}{rank}d"
    return pool_r


max_pool1d, max_pool2d, max_pool3d = (_pool_of_rank(max_pool, r) for r in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_pool_of_rank(avg_pool, r) for r in (1, 2, 3))


def adaptive_avg_pool(x, output_size: IntOrTuple):
    """ops.adaptive_avg_pool on cuda."""
    x = _float_tensor(x, "x")
    return _avg_forward(x, _adaptive_axes(x.shape, output_size), True)


def adaptive_avg_pool_backward(dy, x_shape, output_size: IntOrTuple):
    """ops.adaptive_avg_pool_backward on cuda."""
    x_shape = _check_x_shape(x_shape)
    return _avg_backward(_float_tensor(dy, "dy"), x_shape, _adaptive_axes(x_shape, output_size), True)


def global_avg_pool(x):
    """ops.global_avg_pool on cuda: (N, *spatial, C) -> (N, C)."""
    x = _float_tensor(x, "x")
    return _avg_forward(x, _global(x.shape)[0], True).reshape(x.shape[0], x.shape[-1])


def global_avg_pool_backward(dy, x_shape):
    """ops.global_avg_pool_backward on cuda: dy (N, C) -> dx of x_shape."""
    x_shape = _check_x_shape(x_shape)
    dy = _float_tensor(dy, "dy")
    axes, _ = _global(x_shape)
    _shape(dy, "dy", (x_shape[0], x_shape[-1]))
    return _avg_backward(dy.reshape(x_shape[0], *(1,) * (len(x_shape) - 2), x_shape[-1]), x_shape, axes, True)


def global_max_pool(x, *, return_indices: bool = False):
    """ops.global_max_pool on cuda: (N, *spatial, C) -> (N, C)."""
    x = _float_tensor(x, "x")
    result = _max_forward(x, _global(x.shape)[0], return_indices)
    if return_indices:
        return tuple(r.reshape(x.shape[0], x.shape[-1]) for r in result)
    return result.reshape(x.shape[0], x.shape[-1])


# ---- batch normalization ---------------------------------------------------------------------------------


def batch_norm(x, gamma=None, beta=None, *, running_mean=None, running_var=None, training: bool = True,
               momentum: float = 0.1, eps: float = 1e-5):
    """ops.batch_norm on cuda; the NormStats are float64 Tensors (C,), running statistics Tensors (C,)."""
    x = _float_tensor(x, "x")
    if x.ndim < 2 or x.shape[-1] == 0:
        raise ValueError(f"x must be (N, *spatial, C) with C > 0, got shape {x.shape}")
    training = check_bool(training, "training")
    momentum = check_real(momentum, "momentum")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    eps = check_real(eps, "eps")
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    channels = x.shape[-1]
    rows = x.size // channels
    gamma, beta = _vector(gamma, "gamma", channels, x.dtype), _vector(beta, "beta", channels, x.dtype)
    for name, running in (("running_mean", running_mean), ("running_var", running_var)):
        if running is not None and (not isinstance(running, Tensor) or running.shape != (channels,)
                                    or running.dtype not in FLOATS):
            raise ValueError(f"{name} must be a float Tensor of shape ({channels},), got {running!r}")
    module, dtype = _backend.module(), x.dtype.name
    if training:
        if rows < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel, got x of shape {x.shape}")
        mean, var, inv_std = (empty((channels,), np.float64) for _ in range(3))
        module.batch_norm_statistics(dtype, rows, channels, x.data_ptr, eps, mean.data_ptr, var.data_ptr,
                                     inv_std.data_ptr)
        for running, batch_value, factor in ((running_mean, mean, 1.0), (running_var, var, rows / (rows - 1))):
            if running is not None:
                module.batch_norm_running_update(running.dtype.name, channels, momentum, factor,
                                                 batch_value.data_ptr, running.data_ptr)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm with training=False needs running_mean and running_var")
        _same_dtype(running_mean.dtype, running_var=running_var)
        mean, inv_std = empty((channels,), np.float64), empty((channels,), np.float64)
        module.batch_norm_fixed_statistics(running_mean.dtype.name, channels, running_mean.data_ptr,
                                           running_var.data_ptr, eps, mean.data_ptr, inv_std.data_ptr)
    y = empty(x.shape, x.dtype)
    module.batch_norm_apply(dtype, rows, channels, x.data_ptr, mean.data_ptr, inv_std.data_ptr, _pointer(gamma),
                            _pointer(beta), y.data_ptr)
    return y, NormStats(mean, inv_std)


def batch_norm_backward(dy, x, gamma, mean, inv_std, *, training: bool = True):
    """ops.batch_norm_backward on cuda: (dx, dgamma, dbeta)."""
    dy, x = _float_tensor(dy, "dy"), _float_tensor(x, "x")
    _same_dtype(x.dtype, dy=dy)
    _shape(dy, "dy", x.shape)
    training = check_bool(training, "training")
    channels = x.shape[-1]
    gamma = _vector(gamma, "gamma", channels, x.dtype)
    for name, stat in (("mean", mean), ("inv_std", inv_std)):
        if not isinstance(stat, Tensor) or stat.dtype != np.float64 or stat.shape != (channels,):
            raise ValueError(f"{name} must be the float64 Tensor ({channels},) batch_norm returned, got {stat!r}")
    dx, dgamma, dbeta = empty(x.shape, x.dtype), empty((channels,), x.dtype), empty((channels,), x.dtype)
    _backend.module().batch_norm_backward(x.dtype.name, x.size // channels, channels, dy.data_ptr, x.data_ptr,
                                          mean.data_ptr, inv_std.data_ptr, _pointer(gamma), training, dx.data_ptr,
                                          dgamma.data_ptr, dbeta.data_ptr)
    return dx, dgamma, dbeta


# ---- pointwise activations -------------------------------------------------------------------------------
# The host ops themselves: their shared helpers (_pointwise, _pointwise_backward) send Tensors here.

relu, relu_backward, relu6, relu6_backward = _act.relu, _act.relu_backward, _act.relu6, _act.relu6_backward
clipped_relu, clipped_relu_backward = _act.clipped_relu, _act.clipped_relu_backward
leaky_relu, leaky_relu_backward = _act.leaky_relu, _act.leaky_relu_backward
elu, elu_backward = _act.elu, _act.elu_backward
sigmoid, sigmoid_backward, tanh, tanh_backward = _act.sigmoid, _act.sigmoid_backward, _act.tanh, _act.tanh_backward
gelu, gelu_backward = _act.gelu, _act.gelu_backward
hard_sigmoid, hard_sigmoid_backward = _act.hard_sigmoid, _act.hard_sigmoid_backward
hard_swish, hard_swish_backward = _act.hard_swish, _act.hard_swish_backward


def pointwise(x: Tensor, kind: str, alpha: float, out) -> Tensor:
    """y = kind(x) elementwise; out: None or a Tensor of x's shape and dtype (may be x itself)."""
    x = _float_tensor(x, "x")
    if out is None:
        out = empty(x.shape, x.dtype)
    else:
        out = _float_tensor(out, "out")
        _same_dtype(x.dtype, out=out)
        _shape(out, "out", x.shape)
    _backend.module().pointwise_forward(x.dtype.name, kind, alpha, x.size, x.data_ptr, out.data_ptr)
    return out


def pointwise_backward(dy, saved, saved_name: str, kind: str, alpha: float) -> Tensor:
    dy, saved = _float_tensor(dy, "dy"), _float_tensor(saved, saved_name)
    _same_dtype(saved.dtype, dy=dy)
    _shape(dy, "dy", saved.shape)
    dx = empty(saved.shape, saved.dtype)
    _backend.module().pointwise_backward(saved.dtype.name, kind, alpha, saved.size, dy.data_ptr, saved.data_ptr,
                                         dx.data_ptr)
    return dx


# ---- loss ------------------------------------------------------------------------------------------------


def softmax_cross_entropy(logits, targets, *, weight=None, ignore_index: int = DEFAULT_IGNORE_INDEX,
                          label_smoothing: float = 0.0, reduction: str = "mean", dloss=None):
    """ops.softmax_cross_entropy on cuda, with integer class targets (an int64 Tensor), reduction 'mean' or
    'sum'; returns (loss as a Python float, dlogits Tensor). Class weights, label smoothing, probability
    targets and reduction='none' are host-only."""
    logits = _float_tensor(logits, "logits")
    reduction = _check_reduction(reduction)
    if weight is not None or label_smoothing != 0.0 or dloss is not None or reduction == "none":
        raise ValueError("on cuda, softmax_cross_entropy takes no weight, label_smoothing or dloss, and reduction "
                         f"'mean' or 'sum' (got weight={weight!r}, label_smoothing={label_smoothing!r}, "
                         f"reduction={reduction!r})")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    if logits.ndim < 2 or logits.shape[-1] == 0:
        raise ValueError(f"logits must be (N, ..., K) with K > 0, got shape {logits.shape}")
    if not isinstance(targets, Tensor) or targets.dtype != np.int64 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must be an int64 Tensor of class indices of shape {logits.shape[:-1]} on cuda, "
                         f"got {targets!r}")
    classes = logits.shape[-1]
    rows = logits.size // classes
    module, dtype = _backend.module(), logits.dtype.name
    row_losses, row_counts = empty((rows,), np.float64), empty((rows,), np.float64)
    module.softmax_cross_entropy_rows(dtype, rows, classes, logits.data_ptr, targets.data_ptr, int(ignore_index),
                                      row_losses.data_ptr, row_counts.data_ptr)
    counts = row_counts.numpy()
    bad = np.flatnonzero(counts < 0)
    if bad.size:
        label = int(targets.reshape(rows).numpy()[bad[0]])
        raise ValueError(f"targets holds class index {label} (at flat position {bad[0]}), outside [0, {classes}) and "
                         f"not ignore_index={ignore_index}")
    total = float(np.sum(row_losses.numpy()))  # a fixed-order host sum: deterministic
    count = float(np.sum(counts))
    scale = 1.0 if reduction == "sum" else (1.0 / count if count else math.nan)
    dlogits = empty(logits.shape, logits.dtype)
    module.softmax_cross_entropy_grad(dtype, rows, classes, logits.data_ptr, targets.data_ptr, int(ignore_index),
                                      scale, dlogits.data_ptr)
    return (total if reduction == "sum" else total * scale), dlogits


# ---- dropout ---------------------------------------------------------------------------------------------


def dropout(x, rate: float, *, training: bool = True, generator: Optional[Generator] = None):
    """ops.dropout on cuda: (y, mask), the mask a uint8 Tensor of x's shape (1 = kept) holding the bits the
    host op draws from the same generator state."""
    x = _float_tensor(x, "x")
    rate = _check_rate(rate)
    if not check_bool(training, "training") or rate == 0.0:
        resolve(generator)
        return x, None
    mask = empty(x.shape, np.uint8)
    y = empty(x.shape, x.dtype)
    seed, first_block = resolve(generator).reserve(x.size, words_per_value(np.bool_))
    _backend.module().dropout_forward(x.dtype.name, 1, 1, x.size, seed, first_block, rate, x.data_ptr, y.data_ptr,
                                      mask.data_ptr)
    return y, mask


def dropout_backward(dy, mask, rate: float):
    """ops.dropout_backward on cuda: dx = mask * dy / (1 - rate) (mask None: dy itself)."""
    dy = _float_tensor(dy, "dy")
    rate = _check_rate(rate)
    if mask is None:
        return dy
    if not isinstance(mask, Tensor) or mask.dtype != np.uint8 or mask.shape != dy.shape:
        raise ValueError(f"mask must be the uint8 Tensor of shape {dy.shape} dropout returned, got {mask!r}")
    dx = empty(dy.shape, dy.dtype)
    _backend.module().dropout_backward(dy.dtype.name, 1, 1, dy.size, mask.data_ptr, rate, dy.data_ptr, dx.data_ptr)
    return dx


# ---- optimizer -------------------------------------------------------------------------------------------


def sgd_step(params: list, grads: list, velocities: list, first_step: list, *, lr: float, momentum: float,
             dampening: float, weight_decay: float, nesterov: bool) -> None:
    """convkit.optim.SGD's fused update for parameters on cuda (Tensors, updated in place)."""
    module = _backend.module()
    for i, (p, g) in enumerate(zip(params, grads)):
        p, g = _float_tensor(p, "param"), _float_tensor(g, "grad")
        _same_dtype(p.dtype, grad=g)
        _shape(g, "grad", p.shape)
        v = velocities[i] if velocities else None
        if v is not None:
            _same_dtype(p.dtype, velocity=_float_tensor(v, "velocity"))
            _shape(v, "velocity", p.shape)
        module.sgd_step(p.dtype.name, p.size, p.data_ptr, g.data_ptr, _pointer(v), bool(first_step[i]), lr, momentum,
                        dampening, weight_decay, nesterov)
