"""Max and average pooling and their gradients, channels-last, for 1 to 3 spatial axes: sliding windows,
adaptive bins, and global pooling.

x is (N, *spatial, C); outputs are (N, *out_spatial, C), or (N, C) for global pooling. Each operation
becomes per-axis windows (convkit.pool_spec) that the C++ core runs; leading axes of size 1 make every
input 3-D, as for convolution.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from .. import _C
from .._validate import as_float_array, check_bool, check_output_size, common_float_dtype, shown
from ..conv_spec import IntOrTuple, Padding
from ..pool_spec import (
    WINDOW_BYTES,
    AxisWindows,
    adaptive_output_size,
    adaptive_windows,
    check_pooled_shape,
    core_windows,
    pool_spec,
    sliding_windows,
)
from ..workspace import check_workspace
from ._conv import _as_5d

MaxPoolResult = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]


def _check_x_shape(x_shape) -> tuple[int, ...]:
    if not isinstance(x_shape, (tuple, list)) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in x_shape
    ):
        raise TypeError(f"x_shape must be a tuple of ints, got {shown(x_shape)}")
    return check_pooled_shape(x_shape)[0]


def _check_dy(dy, expected_shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"dy must have the output's shape {tuple(expected_shape)}, got {dy.shape}")
    return np.ascontiguousarray(dy, dtype=dtype)


def _output_shape(x_shape: Sequence[int], axes: Sequence[AxisWindows]) -> tuple[int, ...]:
    return (x_shape[0], *(len(a.begin) for a in axes), x_shape[-1])


def _plain(value, depth: int = 2) -> bool:
    """An int, a str, None, or a tuple of such, nested at most `depth` deep (per-axis pairs of padding):
    safe in a cache key. Other types are not cached, because equal keys must mean equal validation
    (True == 1 == 1.0 == np.int64(1) hash alike); deeper tuples are invalid anyway, and walking an
    arbitrarily deep one would exhaust the stack (RecursionError)."""
    if value is None or type(value) in (int, str):
        return True
    return depth > 0 and type(value) is tuple and all(_plain(v, depth - 1) for v in value)


@functools.lru_cache(maxsize=256)
def _cached_sliding_axes(x_shape, pool_size, stride, padding, dilation, ceil_mode) -> tuple[AxisWindows, ...]:
    spec = pool_spec(x_shape, pool_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return tuple(sliding_windows(spec, axis) for axis in range(spec.rank))


def _sliding_axes(x_shape, pool_size, stride, padding, dilation, ceil_mode) -> list[AxisWindows]:
    """The windows of a sliding-window pooling. Validating the options cost ~20 us a call, as much as the
    C++ pass on 14x14x256: options of plain ints and strings are validated once per distinct call."""
    options = (tuple(x_shape), pool_size, stride, padding, dilation)
    if type(ceil_mode) is bool and all(_plain(o) for o in options):
        return list(_cached_sliding_axes(*options, ceil_mode))
    return list(_cached_sliding_axes.__wrapped__(x_shape, pool_size, stride, padding, dilation, ceil_mode))


def _adaptive_axes(x_shape, output_size) -> list[AxisWindows]:
    out_spatial = adaptive_output_size(x_shape, output_size)
    # The windows are built per output index, even for an empty batch: refuse an output that could not
    # exist for one sample and one channel, or windows over the workspace limit, before building them.
    check_output_size((max(x_shape[0], 1), *out_spatial, max(x_shape[-1], 1)), 8,
                      f"the output for output_size={shown(output_size)}")
    check_workspace(sum(out_spatial) * WINDOW_BYTES, f"the pooling windows for output_size={shown(output_size)}")
    return [adaptive_windows(n, m) for n, m in zip(x_shape[1:-1], out_spatial)]


def _max_forward(x: np.ndarray, axes: list[AxisWindows], return_indices) -> MaxPoolResult:
    return_indices = check_bool(return_indices, "return_indices")
    x = np.ascontiguousarray(x)
    shape = _output_shape(x.shape, axes)
    y = np.empty(shape, dtype=x.dtype)
    indices = np.empty(shape, dtype=np.int64) if return_indices else None
    spatial = shape[1:-1]
    _C.max_pool_forward(_as_5d(x, x.shape[1:-1]), _as_5d(y, spatial),
                        None if indices is None else _as_5d(indices, spatial), core_windows(axes))
    return (y, indices) if return_indices else y


def _max_backward(dy, x: np.ndarray, axes: list[AxisWindows], indices) -> np.ndarray:
    dy = as_float_array(dy, "dy")
    dtype = common_float_dtype(x, dy)
    shape = _output_shape(x.shape, axes)
    dy = _check_dy(dy, shape, dtype)
    if indices is None:
        indices = _max_forward(x.astype(dtype, copy=False), axes, True)[1]
    else:
        indices = np.asarray(indices)
        if not np.issubdtype(indices.dtype, np.integer) or indices.shape != shape:
            raise ValueError(f"indices must be an integer array of the output's shape {shape}, got "
                             f"{indices.dtype} {indices.shape}")
        # No range check here: the core compares every index with the taps of its window (it never uses
        # one as an address) and names the first that is not one of them. A NumPy pass over the indices
        # cost ~40% of the backward pass.
        indices = np.ascontiguousarray(indices, dtype=np.int64)
    dx = np.empty(x.shape, dtype=dtype)
    _C.max_pool_backward(_as_5d(dy, shape[1:-1]), _as_5d(indices, shape[1:-1]), _as_5d(dx, x.shape[1:-1]),
                         core_windows(axes))
    return dx


def _avg_forward(x: np.ndarray, axes: list[AxisWindows], count_include_pad) -> np.ndarray:
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    x = np.ascontiguousarray(x)
    y = np.empty(_output_shape(x.shape, axes), dtype=x.dtype)
    _C.avg_pool_forward(_as_5d(x, x.shape[1:-1]), _as_5d(y, y.shape[1:-1]), core_windows(axes), count_include_pad)
    return y


def _avg_backward(dy: np.ndarray, x_shape: tuple[int, ...], axes: list[AxisWindows], count_include_pad) -> np.ndarray:
    count_include_pad = check_bool(count_include_pad, "count_include_pad")
    shape = _output_shape(x_shape, axes)
    dy = _check_dy(dy, shape, dy.dtype)
    dx = np.empty(x_shape, dtype=dy.dtype)
    _C.avg_pool_backward(_as_5d(dy, shape[1:-1]), _as_5d(dx, x_shape[1:-1]), core_windows(axes), count_include_pad)
    return dx


def max_pool(
    x,
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> MaxPoolResult:
    """Max pooling of x (N, *spatial, C) over windows of pool_size -> (N, *out_spatial, C).

    stride defaults to pool_size; dilation to 1; padding to "valid" ("same": TensorFlow's rule; an int,
    one per axis, or (before, after) pairs per axis). Padding counts as -inf: it never wins. ceil_mode
    (default False) rounds the output extent up as PyTorch does. Ties go to the first maximum in window
    order; a NaN in a window propagates, and its index points at the (first) NaN. With return_indices,
    also returns int64 argmax indices (same shape as the output): each the flat index of the input's
    spatial position, per (n, c), as PyTorch's.
    """
    x = as_float_array(x, "x")
    return _max_forward(x, _sliding_axes(x.shape, pool_size, stride, padding, dilation, ceil_mode), return_indices)


def max_pool_backward(
    dy,
    x,
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    indices=None,
) -> np.ndarray:
    """dx: the gradient of sum(dy * max_pool(x, ...)), each dy added at its window's argmax.

    indices: the ones max_pool(..., return_indices=True) returned, or None to recompute them from x.
    """
    x = as_float_array(x, "x")
    return _max_backward(dy, x, _sliding_axes(x.shape, pool_size, stride, padding, dilation, ceil_mode), indices)


def avg_pool(
    x,
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Average pooling of x (N, *spatial, C) over windows of pool_size -> (N, *out_spatial, C).

    stride defaults to pool_size, padding to "valid", ceil_mode to False (as max_pool). Padding counts as
    zeros. count_include_pad (default True, PyTorch's default) divides by the window's size including its
    padding (not the part past the right padding that ceil_mode can add); False divides by the number of
    input samples in the window.
    """
    x = as_float_array(x, "x")
    return _avg_forward(x, _sliding_axes(x.shape, pool_size, stride, padding, 1, ceil_mode), count_include_pad)


def avg_pool_backward(
    dy,
    x_shape: Sequence[int],
    pool_size: IntOrTuple,
    *,
    stride: Optional[IntOrTuple] = None,
    padding: Padding = "valid",
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """dx (shape x_shape, dy's dtype): the gradient of sum(dy * avg_pool(x, ...)) for any x of x_shape."""
    x_shape = _check_x_shape(x_shape)
    axes = _sliding_axes(x_shape, pool_size, stride, padding, 1, ceil_mode)
    return _avg_backward(as_float_array(dy, "dy"), x_shape, axes, count_include_pad)


def adaptive_max_pool(x, output_size: IntOrTuple, *, return_indices: bool = False) -> MaxPoolResult:
    """Max pooling of x (N, *spatial, C) to (N, *output_size, C) over PyTorch's adaptive bins.

    Output index i of an axis of n samples pooled to m reads [floor(i * n / m), ceil((i + 1) * n / m)).
    Ties, NaN and indices as max_pool.
    """
    x = as_float_array(x, "x")
    return _max_forward(x, _adaptive_axes(x.shape, output_size), return_indices)


def adaptive_max_pool_backward(dy, x, output_size: IntOrTuple, *, indices=None) -> np.ndarray:
    """dx: the gradient of sum(dy * adaptive_max_pool(x, output_size)); indices as max_pool_backward."""
    x = as_float_array(x, "x")
    return _max_backward(dy, x, _adaptive_axes(x.shape, output_size), indices)


def adaptive_avg_pool(x, output_size: IntOrTuple) -> np.ndarray:
    """Average pooling of x (N, *spatial, C) to (N, *output_size, C) over adaptive_max_pool's bins."""
    x = as_float_array(x, "x")
    return _avg_forward(x, _adaptive_axes(x.shape, output_size), True)


def adaptive_avg_pool_backward(dy, x_shape: Sequence[int], output_size: IntOrTuple) -> np.ndarray:
    """dx (shape x_shape): the gradient of sum(dy * adaptive_avg_pool(x, output_size))."""
    x_shape = _check_x_shape(x_shape)
    return _avg_backward(as_float_array(dy, "dy"), x_shape, _adaptive_axes(x_shape, output_size), True)


def _global(x_shape, dy=None):
    """Global pooling is adaptive pooling to one sample per axis; dy (N, C) is reshaped to match."""
    rank = check_pooled_shape(x_shape)[1]
    if dy is not None and dy.shape != (x_shape[0], x_shape[-1]):
        raise ValueError(f"dy must have the output's shape {(x_shape[0], x_shape[-1])}, got {dy.shape}")
    return _adaptive_axes(x_shape, 1), (None if dy is None else dy.reshape(dy.shape[0], *(1,) * rank, dy.shape[1]))


def global_max_pool(x, *, return_indices: bool = False) -> MaxPoolResult:
    """The maximum of each (n, c) over all spatial positions: x (N, *spatial, C) -> (N, C).

    Ties, NaN and indices (int64, (N, C)) as max_pool.
    """
    x = as_float_array(x, "x")
    result = _max_forward(x, _global(x.shape)[0], return_indices)
    if return_indices:
        return tuple(r.reshape(x.shape[0], x.shape[-1]) for r in result)
    return result.reshape(x.shape[0], x.shape[-1])


def global_max_pool_backward(dy, x, *, indices=None) -> np.ndarray:
    """dx: the gradient of sum(dy * global_max_pool(x)); dy and indices (or None) are (N, C)."""
    x = as_float_array(x, "x")
    axes, dy = _global(x.shape, as_float_array(dy, "dy"))
    if indices is not None:
        indices = np.asarray(indices)
        if indices.shape != (x.shape[0], x.shape[-1]):
            raise ValueError(f"indices must have shape {(x.shape[0], x.shape[-1])}, got {indices.shape}")
        indices = indices.reshape(dy.shape)
    return _max_backward(dy, x, axes, indices)


def global_avg_pool(x) -> np.ndarray:
    """The mean of each (n, c) over all spatial positions: x (N, *spatial, C) -> (N, C)."""
    x = as_float_array(x, "x")
    return _avg_forward(x, _global(x.shape)[0], True).reshape(x.shape[0], x.shape[-1])


def global_avg_pool_backward(dy, x_shape: Sequence[int]) -> np.ndarray:
    """dx (shape x_shape): the gradient of sum(dy * global_avg_pool(x)); dy is (N, C)."""
    x_shape = _check_x_shape(x_shape)
    axes, dy = _global(x_shape, as_float_array(dy, "dy"))
    return _avg_backward(dy, x_shape, axes, True)


def _of_rank(pool, rank: int):
    def pool_r(x, pool_size, **options):
        ndim = np.ndim(x)
        if ndim != rank + 2:
            raise ValueError(f"{pool_r.__name__} expects x of rank {rank + 2} (N, *{rank} spatial axes, C), "
                             f"got ndim={ndim}")
        return pool(x, pool_size, **options)

    pool_r.__name__ = f"{pool.__name__}{rank}d"
    axes = ", ".join("DHW"[3 - rank:])
    pool_r.__doc__ = f"{pool.__name__}() for {rank}-D inputs: x is (N, {axes}, C). See {pool.__name__}."
    return pool_r


max_pool1d, max_pool2d, max_pool3d = (_of_rank(max_pool, r) for r in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_of_rank(avg_pool, r) for r in (1, 2, 3))
