"""Factorised convolutions built from conv steps: depthwise-separable (MobileNet, Xception), spatially
separable (k x 1 then 1 x k) and flattened (channels, then rows, then columns).

Each is a chain of plain convolutions, z_0 = x, z_i = conv(z_{i-1}, w_i, **options_i), with the bias and
the fused activation on the last step; its backward runs conv_backward down the chain, recomputing the
intermediate z_i (a layer that keeps them can call conv_backward itself).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional, Union

import numpy as np

from .._validate import as_float_array, shown
from ..conv_spec import IntOrTuple, Padding
from ._conv import GRADIENTS, _check_need, conv, conv_backward

Step = tuple[np.ndarray, dict]  # (weights, conv options)


def _chain_forward(x: np.ndarray, steps: Sequence[Step], b, activation, negative_slope) -> list[np.ndarray]:
    """[z_0 = x, z_1, ..., z_n]."""
    zs = [x]
    for i, (w, options) in enumerate(steps):
        last = i == len(steps) - 1
        zs.append(conv(zs[-1], w, b if last else None, **options,
                       activation=activation if last else None, negative_slope=negative_slope))
    return zs


def _chain_backward(dy, x: np.ndarray, steps: Sequence[Step], need) -> tuple:
    """(dx, dw_1, ..., dw_n, db) of the chain without a fused activation; unneeded entries are None."""
    need = _check_need(need)
    zs = _chain_forward(x, steps[:-1], None, None, 0.01)
    last = len(steps) - 1
    grads_w, dz, db = [None] * len(steps), dy, None
    for i in reversed(range(len(steps))):
        step_need = need & {"w", "b"} if i == last else need & {"w"}
        if i > 0 and need & {"x", "w"} or "x" in need:
            step_need = step_need | {"x"}  # the gradient flows on to the earlier steps
        dz, grads_w[i], db_step = conv_backward(dz, zs[i], steps[i][0], **steps[i][1], need=step_need)
        db = db_step if i == last else db
        if dz is None:
            break
    return (dz, *grads_w, db)


def _channels(x) -> int:
    if np.ndim(x) < 3:
        raise ValueError(f"x must be (N, *spatial, C) with 1 to 3 spatial axes, got shape {np.shape(x)}")
    return int(np.shape(x)[-1])


def _separable_steps(x, depthwise_w, pointwise_w, stride, padding, dilation, padding_mode) -> list[Step]:
    depthwise_w = as_float_array(depthwise_w, "depthwise_w")
    pointwise_w = as_float_array(pointwise_w, "pointwise_w")
    channels = _channels(x)
    if depthwise_w.shape[-2:-1] != (1,):
        raise ValueError(f"depthwise_w must be (*kernel_size, 1, C_in * multiplier), got shape {depthwise_w.shape}")
    if any(k != 1 for k in pointwise_w.shape[:-2]):
        raise ValueError(f"pointwise_w must be (1, ..., 1, C_in * multiplier, C_out), got shape {pointwise_w.shape}")
    depthwise = dict(stride=stride, padding=padding, dilation=dilation, groups=channels, padding_mode=padding_mode)
    return [(depthwise_w, depthwise), (pointwise_w, {})]


def separable_conv(
    x,
    depthwise_w,
    pointwise_w,
    b=None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    activation: Optional[str] = None,
    negative_slope: float = 0.01,
) -> np.ndarray:
    """Depthwise-separable convolution: a depthwise conv (one filter per channel) then a 1x1 pointwise conv.

    Shapes: x (N, *spatial, C), depthwise_w (*kernel_size, 1, C * m) with channel multiplier m,
    pointwise_w (1, ..., 1, C * m, C_out), b (C_out,) -> (N, *out_spatial, C_out). stride, padding,
    dilation and padding_mode apply to the depthwise step; bias and activation to the pointwise one.
    Costs prod(k) * C * m + C * m * C_out multiply-adds per pixel instead of prod(k) * C * C_out.
    """
    steps = _separable_steps(x, depthwise_w, pointwise_w, stride, padding, dilation, padding_mode)
    return _chain_forward(as_float_array(x, "x"), steps, b, activation, negative_slope)[-1]


def separable_conv_backward(
    dy,
    x,
    depthwise_w,
    pointwise_w,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    need: Union[str, Iterable[str]] = GRADIENTS,
) -> tuple:
    """(dx, d_depthwise_w, d_pointwise_w, db) of sum(dy * separable_conv(...)); "w" in need gives both weights."""
    steps = _separable_steps(x, depthwise_w, pointwise_w, stride, padding, dilation, padding_mode)
    return _chain_backward(dy, as_float_array(x, "x"), steps, need)


def _axis_options(axis: int, stride, padding, dilation, padding_mode) -> dict:
    """The options of the 2-D step that filters along `axis` (0: rows, 1: columns) alone."""
    def on_axis(value, neutral):
        values = (value, value) if np.ndim(value) == 0 or isinstance(value, str) else tuple(value)
        if len(values) != 2:
            raise ValueError(f"expected an int or one entry per spatial axis (2), got {shown(value)}")
        return tuple(v if a == axis else neutral for a, v in enumerate(values))

    if not (isinstance(padding, str) and padding in ("valid", "same")):
        padding = on_axis(padding, 0)
    return dict(stride=on_axis(stride, 1), padding=padding, dilation=on_axis(dilation, 1), padding_mode=padding_mode)


def _spatial_steps(w_rows, w_cols, stride, padding, dilation, padding_mode, groups) -> list[Step]:
    rows_w, cols_w = as_float_array(w_rows, "w_rows"), as_float_array(w_cols, "w_cols")
    if rows_w.ndim != 4 or rows_w.shape[1] != 1:
        raise ValueError(f"w_rows must be a (k_h, 1, C_in, C_mid) kernel, got shape {rows_w.shape}")
    if cols_w.ndim != 4 or cols_w.shape[0] != 1:
        raise ValueError(f"w_cols must be a (1, k_w, C_mid, C_out) kernel, got shape {cols_w.shape}")
    options = [_axis_options(a, stride, padding, dilation, padding_mode) for a in (0, 1)]
    return [(rows_w, {**options[0], "groups": groups[0]}), (cols_w, {**options[1], "groups": groups[1]})]


def spatially_separable_conv2d(
    x,
    w_rows,
    w_cols,
    b=None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    activation: Optional[str] = None,
    negative_slope: float = 0.01,
) -> np.ndarray:
    """A k_h x 1 convolution then a 1 x k_w one: k_h + k_w taps per pixel instead of k_h * k_w.

    Shapes: x (N, H, W, C_in), w_rows (k_h, 1, C_in, C_mid), w_cols (1, k_w, C_mid, C_out), b (C_out,)
    -> (N, H', W', C_out). Per-axis stride/padding/dilation: the row step takes the first axis's, the
    column step the second's ("valid"/"same" apply to both), so the output has the size of the full
    k_h x k_w conv with the same options.
    """
    steps = _spatial_steps(w_rows, w_cols, stride, padding, dilation, padding_mode, (1, 1))
    return _chain_forward(as_float_array(x, "x"), steps, b, activation, negative_slope)[-1]


def spatially_separable_conv2d_backward(
    dy, x, w_rows, w_cols, *, stride: IntOrTuple = 1, padding: Padding = "valid", dilation: IntOrTuple = 1,
    padding_mode: str = "zeros", need: Union[str, Iterable[str]] = GRADIENTS,
) -> tuple:
    """(dx, dw_rows, dw_cols, db) of sum(dy * spatially_separable_conv2d(...))."""
    steps = _spatial_steps(w_rows, w_cols, stride, padding, dilation, padding_mode, (1, 1))
    return _chain_backward(dy, as_float_array(x, "x"), steps, need)


def _flattened_steps(w_channels, w_rows, w_cols, padding, padding_mode) -> list[Step]:
    w_channels = as_float_array(w_channels, "w_channels")
    if w_channels.shape[:2] != (1, 1) or w_channels.ndim != 4:
        raise ValueError(f"w_channels must be a (1, 1, C_in, C_out) kernel, got shape {w_channels.shape}")
    out = w_channels.shape[-1]
    spatial = _spatial_steps(w_rows, w_cols, 1, padding, 1, padding_mode, (out, out))
    return [(w_channels, {}), *spatial]


def flattened_conv2d(
    x,
    w_channels,
    w_rows,
    w_cols,
    b=None,
    *,
    padding: Padding = "valid",
    padding_mode: str = "zeros",
    activation: Optional[str] = None,
    negative_slope: float = 0.01,
) -> np.ndarray:
    """Flattened convolution (Jin et al. 2014): three 1-D filters, across channels, down rows, along columns.

    Shapes: x (N, H, W, C_in), w_channels (1, 1, C_in, C_out), w_rows (k_h, 1, 1, C_out),
    w_cols (1, k_w, 1, C_out), b (C_out,) -> (N, H', W', C_out). The row and column steps are depthwise:
    each output channel gets a rank-1 k_h x k_w x C_in filter for C_in + k_h + k_w weights.
    """
    steps = _flattened_steps(w_channels, w_rows, w_cols, padding, padding_mode)
    return _chain_forward(as_float_array(x, "x"), steps, b, activation, negative_slope)[-1]


def flattened_conv2d_backward(
    dy, x, w_channels, w_rows, w_cols, *, padding: Padding = "valid", padding_mode: str = "zeros",
    need: Union[str, Iterable[str]] = GRADIENTS,
) -> tuple:
    """(dx, dw_channels, dw_rows, dw_cols, db) of sum(dy * flattened_conv2d(...))."""
    steps = _flattened_steps(w_channels, w_rows, w_cols, padding, padding_mode)
    return _chain_backward(dy, as_float_array(x, "x"), steps, need)
