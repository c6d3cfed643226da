"""Convolution, its gradients, and transposed convolution, channels-last, for 1 to 3 spatial axes.

Layouts (Keras): x (N, *spatial, C_in); conv weights (*kernel_size, C_in // groups, C_out); transposed-conv
weights (*kernel_size, C_out // groups, C_in); outputs (N, *out_spatial, C_out). The C++ core sees every
convolution as 3-D: leading spatial axes of size 1 are added here and never copied.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Optional, Union

import numpy as np

from .. import _C
from .._validate import as_float_array, check_real, common_float_dtype, empty_output, shown
from ..conv_spec import ConvSpec, IntOrTuple, Padding, conv_spec, conv_transpose_spec
from ..workspace import check_workspace
from ._checks import check_activation, check_bias

GRADIENTS = ("x", "w", "b")
Gradients = tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]


def _as_5d(arr: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """(N, *spatial, C) as the core's (N, D, H, W, C): a view, never a copy (arr is C-contiguous)."""
    return arr.reshape(arr.shape[0], *(1,) * (3 - len(spatial)), *spatial, arr.shape[-1])


def _kernel_5d(w: np.ndarray) -> np.ndarray:
    return w.reshape(*(1,) * (5 - w.ndim), *w.shape)


def _core_options(spec: ConvSpec, padding_mode: str) -> tuple:
    """stride, dilation, pad_before lifted to 3 axes, then groups and padding mode: the core's option tail."""
    lead = 3 - spec.rank
    return ((1,) * lead + spec.stride, (1,) * lead + spec.dilation, (0,) * lead + spec.pad_before, spec.groups,
            padding_mode)


def _check_gradient(dy, expected_shape: tuple, dtype: np.dtype) -> np.ndarray:
    dy = as_float_array(dy, "dy")
    if dy.shape != expected_shape:
        raise ValueError(f"dy must have the output's shape {expected_shape}, got {dy.shape}")
    return np.ascontiguousarray(dy, dtype=dtype)


def _check_backward_workspace(spec: ConvSpec, dtype: np.dtype, need: frozenset) -> None:
    """The least scratch conv_backward holds at once, against the workspace limit (the core checks again,
    GEMM panels included): a column tile of one output pixel (prod(kernel_size) * C_in / groups values), and
    for dw a transposed copy of w beside it. Depthwise convolutions (groups == C_in) use neither."""
    if spec.groups == spec.in_channels or not need & {"x", "w"}:
        return
    row_bytes = math.prod(spec.kernel_size) * (spec.in_channels // spec.groups) * dtype.itemsize
    check_workspace(row_bytes, "conv_backward's column tile (one output pixel)")
    if "w" in need:
        w_bytes = math.prod(spec.kernel_size) * (spec.in_channels // spec.groups) * spec.out_channels * dtype.itemsize
        check_workspace(row_bytes + w_bytes, "conv_backward's weight gradient (a copy of w and a one-pixel column tile)")


def _check_need(need: Union[str, Iterable[str]]) -> frozenset:
    names = (need,) if isinstance(need, str) else need
    try:
        names = frozenset(names)
    except TypeError:
        raise TypeError(f"need must be a collection of names among {GRADIENTS}, got {shown(need)}") from None
    if not names <= set(GRADIENTS):
        raise ValueError(f"need must name gradients among {GRADIENTS}, got {shown(need)}")
    return names


def conv(
    x,
    w,
    b=None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    activation: Optional[str] = None,
    negative_slope: float = 0.01,
) -> np.ndarray:
    """N-d convolution (cross-correlation, as in every deep-learning library), channels-last.

    Shapes (rank r = 1, 2 or 3 spatial axes):
        x: (N, *spatial, C_in)   w: (*kernel_size, C_in / groups, C_out)   b: (C_out,)
        -> (N, *out_spatial, C_out)

    stride, dilation: int or one per axis. padding: "valid", "same" (Keras rule: the extra row/column goes
    at the end), an int, one int per axis, or (before, after) pairs per axis. padding_mode: "zeros",
    "reflect" (edge sample not repeated), "replicate" (edge repeated) or "circular" (wrap-around).
    groups splits the channels into independent convolutions (groups == C_in: depthwise, with a channel
    multiplier of C_out / C_in). activation ('relu', 'leaky_relu') is fused into the output pass.
    Bad arguments raise ValueError/TypeError naming the argument and its value (convkit.conv_spec).
    """
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    spec = conv_spec(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     padding_mode=padding_mode)
    activation = check_activation(activation)
    negative_slope = check_real(negative_slope, "negative_slope")
    dtype = common_float_dtype(x, w)
    x = np.ascontiguousarray(x, dtype=dtype)  # im2col walks channels-last rows: one copy at most
    w = np.ascontiguousarray(w, dtype=dtype)
    b = check_bias(b, spec.out_channels, dtype, "one value per output channel")
    y = empty_output((x.shape[0], *spec.out_spatial, spec.out_channels), dtype, "output")
    _C.conv_forward(_as_5d(x, spec.in_spatial), _kernel_5d(w), b, _as_5d(y, spec.out_spatial),
                    *_core_options(spec, spec.padding_mode), activation, negative_slope)
    return y


def conv_backward(
    dy,
    x,
    w,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    need: Union[str, Iterable[str]] = GRADIENTS,
) -> Gradients:
    """Gradients (dx, dw, db) of sum(dy * conv(x, w, b, ...)) with respect to x, w and b.

    Shapes: dy (N, *out_spatial, C_out) -> dx (N, *spatial, C_in), dw (*kernel_size, C_in / groups, C_out),
    db (C_out,). The options are conv's (an activation fused into the forward pass is not undone here:
    pass the gradient with respect to the conv's output before the activation). `need` names the gradients
    to compute, among "x", "w", "b"; the others come back as None and cost nothing (a first layer needs
    no dx).
    """
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    spec = conv_spec(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     padding_mode=padding_mode)
    need = _check_need(need)
    dtype = common_float_dtype(x, w, as_float_array(dy, "dy"))
    dy = _check_gradient(dy, (x.shape[0], *spec.out_spatial, spec.out_channels), dtype)
    _check_backward_workspace(spec, dtype, need)
    options = _core_options(spec, spec.padding_mode)
    dx = dw = db = None
    if "x" in need:
        dx = np.empty(x.shape, dtype=dtype)
        _C.conv_backward_data(_as_5d(dy, spec.out_spatial), _kernel_5d(np.ascontiguousarray(w, dtype=dtype)),
                              _as_5d(dx, spec.in_spatial), *options)
    if "b" in need:
        db = np.empty(spec.out_channels, dtype=dtype)
    if "w" in need:
        dw = np.empty(w.shape, dtype=dtype)
        _C.conv_backward_weights(_as_5d(dy, spec.out_spatial), _as_5d(np.ascontiguousarray(x, dtype=dtype),
                                 spec.in_spatial), _kernel_5d(dw), db, *options)
    elif db is not None:
        db[...] = dy.reshape(-1, spec.out_channels).sum(axis=0, dtype=np.float64)
    return dx, dw, db


def conv_transpose(
    x,
    w,
    b=None,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution (the adjoint of conv; "deconvolution" for upsampling), channels-last.

    Shapes: x (N, *spatial, C_in), w (*kernel_size, C_out / groups, C_in), b (C_out,)
        -> (N, *out_spatial, C_out), out = (in - 1) * stride - pad_before - pad_after
           + dilation * (kernel - 1) + output_padding + 1 per axis (PyTorch's rule).

    conv_transpose(x, w) equals the input gradient of conv(y, w) with the same options, for a y of the
    output's shape: w is laid out as that conv's weight. padding crops the result ("same" gives
    out = in * stride); output_padding (< max(stride, dilation)) picks among the output sizes a strided
    conv maps to the same input size. Options are checked by convkit.conv_spec.conv_transpose_spec.
    """
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    spec = conv_transpose_spec(x.shape, w.shape, stride=stride, padding=padding, output_padding=output_padding,
                               dilation=dilation, groups=groups)
    dtype = common_float_dtype(x, w)
    b = check_bias(b, spec.out_channels, dtype, "one value per output channel")
    y = empty_output((x.shape[0], *spec.out_spatial, spec.out_channels), dtype, "output")
    # The conv this is the adjoint of reads y and writes x: its input gradient is our output.
    _C.conv_backward_data(_as_5d(np.ascontiguousarray(x, dtype=dtype), spec.in_spatial),
                          _kernel_5d(np.ascontiguousarray(w, dtype=dtype)), _as_5d(y, spec.out_spatial),
                          *_core_options(spec, "zeros"))
    if b is not None:
        y += b
    return y


def conv_transpose_backward(
    dy,
    x,
    w,
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    need: Union[str, Iterable[str]] = GRADIENTS,
) -> Gradients:
    """Gradients (dx, dw, db) of sum(dy * conv_transpose(x, w, b, ...)); shapes and `need` as conv_backward.

    dx is the forward conv of dy with w; dw is that conv's weight gradient with the roles of input and
    output gradient swapped.
    """
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    spec = conv_transpose_spec(x.shape, w.shape, stride=stride, padding=padding, output_padding=output_padding,
                               dilation=dilation, groups=groups)
    need = _check_need(need)
    dtype = common_float_dtype(x, w, as_float_array(dy, "dy"))
    dy = _check_gradient(dy, (x.shape[0], *spec.out_spatial, spec.out_channels), dtype)
    dy5, options = _as_5d(dy, spec.out_spatial), _core_options(spec, "zeros")
    dx = dw = db = None
    if "x" in need:
        dx = np.empty(x.shape, dtype=dtype)
        _C.conv_forward(dy5, _kernel_5d(np.ascontiguousarray(w, dtype=dtype)), None, _as_5d(dx, spec.in_spatial),
                        *options, "none", 0.0)
    if "w" in need:
        dw = np.empty(w.shape, dtype=dtype)
        _C.conv_backward_weights(_as_5d(np.ascontiguousarray(x, dtype=dtype), spec.in_spatial), dy5,
                                 _kernel_5d(dw), None, *options)
    if "b" in need:
        db = dy.reshape(-1, spec.out_channels).sum(axis=0, dtype=np.float64).astype(dtype)
    return dx, dw, db


def _conv_of_rank(rank: int):
    def conv_r(x, w, b=None, **options) -> np.ndarray:
        ndim = np.ndim(x)
        if ndim != rank + 2:
            raise ValueError(f"conv{rank}d expects x of rank {rank + 2} (N, *{rank} spatial axes, C), got ndim={ndim}")
        return conv(x, w, b, **options)

    conv_r.__name__ = f"conv{rank}d"
    conv_r.__doc__ = f"conv() for {rank}-D inputs: x is (N, {', '.join('DHW'[3 - rank:])}, C). See conv."
    return conv_r


conv1d = _conv_of_rank(1)
conv2d = _conv_of_rank(2)
conv3d = _conv_of_rank(3)
