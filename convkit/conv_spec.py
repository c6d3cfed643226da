"""Argument normalisation and validation for N-d convolution (1 to 3 spatial axes).

Data are channels-last: the input x is (N, *spatial, C_in) and the output
(N, *out_spatial, C_out).  Kernels use the Keras layouts:

* convolution:            w is (*kernel_size, C_in // groups, C_out)
* transposed convolution: w is (*kernel_size, C_out // groups, C_in)

The transposed layout is the convolution layout with the roles of the channel
axes swapped, so the transposed convolution with weight w is exactly the
adjoint of the convolution with the same w and the same stride, padding,
dilation and groups (it is what the gradient of a convolution w.r.t. its
input computes); no weight transposition is ever needed.  Output channels
are grouped contiguously: group j reads input channels
[j * C_in // groups, (j + 1) * C_in // groups) and writes output channels
[j * C_out // groups, (j + 1) * C_out // groups); depthwise convolution is
groups == C_in, with channel multiplier C_out // C_in.

Every invalid argument raises ValueError whose message names the argument and
its value.  Integers may be Python ints of any size or NumPy integers (bools
are rejected); each must fit in int64, and so must every padded or output
extent, so absurd values are rejected here instead of overflowing later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from ._validate import shown

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
INT64_MAX = 2**63 - 1

IntOrTuple = Union[int, Sequence[int]]
Padding = Union[str, int, Sequence[Union[int, Sequence[int]]]]


@dataclass(frozen=True)
class ConvSpec:
    """Normalised arguments of one convolution or transposed convolution.

    Every tuple has one entry per spatial axis.  For a convolution the input is
    padded by pad_before / pad_after and output_padding is all zeros.  For a
    transposed convolution pad_before / pad_after are cropped from the start /
    end of the full scatter result, output_padding is the extent added at the
    end of each output axis, and padding_mode is always "zeros".
    """

    rank: int
    in_spatial: tuple[int, ...]
    kernel_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    padding_mode: str
    out_spatial: tuple[int, ...]


def conv_spec(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvSpec:
    """Validate and normalise the arguments of a convolution.

    x_shape: (N, *spatial, C_in), 1 to 3 spatial axes, N may be 0.
    w_shape: (*kernel_size, C_in // groups, C_out).
    stride, dilation: a positive int or one per spatial axis.
    padding: "valid" (none); "same" (TensorFlow rule: out = ceil(in / stride),
        total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0),
        before = total // 2, after = total - before); a non-negative int for
        both sides of every axis; or a tuple with one entry per spatial axis,
        each an int (both sides) or a (before, after) pair.
    padding_mode: "zeros"; "reflect" (mirror excluding the edge sample, pads
        < input size); "replicate" (repeat the edge sample); "circular"
        (wrap around, pads <= input size).

    Output extent per axis: (in + before + after - dilation * (k - 1) - 1)
    // stride + 1, which must be >= 1.
    """
    x_shape, w_shape, rank = _shapes(x_shape, w_shape, "(*kernel_size, C_in // groups, C_out)")
    in_spatial, kernel_size = x_shape[1:-1], w_shape[:-2]
    in_channels, out_channels = x_shape[-1], w_shape[-1]
    groups = _groups(groups, C_in=in_channels, C_out=out_channels)
    if w_shape[-2] * groups != in_channels:
        raise ValueError(
            f"w of shape {w_shape} needs C_in // groups = {in_channels // groups} on axis -2 "
            f"for x of shape {x_shape} and groups={groups}"
        )
    stride = _per_axis("stride", stride, rank, minimum=1)
    dilation = _per_axis("dilation", dilation, rank, minimum=1)
    if not (isinstance(padding_mode, str) and padding_mode in PADDING_MODES):
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {shown(padding_mode)}")
    before, after = window_padding(padding, in_spatial, kernel_size, stride, dilation)

    out_spatial = []
    for axis, (n, k, s, d, b, a) in enumerate(zip(in_spatial, kernel_size, stride, dilation, before, after)):
        max_pad = {"reflect": n - 1, "circular": n}.get(padding_mode, INT64_MAX)
        if max(b, a) > max_pad:
            raise ValueError(
                f"padding_mode={shown(padding_mode)} allows padding of at most {max_pad} on spatial axis "
                f"{axis} of size {n}, got ({b}, {a}) from padding={shown(padding)}"
            )
        padded, span = n + b + a, d * (k - 1) + 1
        if padded > INT64_MAX:
            raise ValueError(f"padding={shown(padding)} makes spatial axis {axis} of size {n} larger than 2**63 - 1")
        if span > padded:
            raise ValueError(
                f"kernel of size {k} with dilation {d} spans {span} samples, more than the {padded} "
                f"of the padded input on spatial axis {axis} (x shape {x_shape}, padding={shown(padding)})"
            )
        out_spatial.append((padded - span) // s + 1)
    return ConvSpec(
        rank=rank, in_spatial=in_spatial, kernel_size=kernel_size, in_channels=in_channels,
        out_channels=out_channels, stride=stride, dilation=dilation, pad_before=before, pad_after=after,
        output_padding=(0,) * rank, groups=groups, padding_mode=padding_mode, out_spatial=tuple(out_spatial),
    )


def conv_transpose_spec(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: IntOrTuple = 1,
    padding: Padding = "valid",
    output_padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> ConvSpec:
    """Validate and normalise the arguments of a transposed convolution.

    x_shape: (N, *spatial, C_in), 1 to 3 spatial axes, N may be 0.
    w_shape: (*kernel_size, C_out // groups, C_in) -- the layout of the
        convolution this is the adjoint of, see the module docstring.
    stride, dilation: a positive int or one per spatial axis.
    padding: cropped from both ends of each output axis; "valid", an int, or
        per-axis ints or (before, after) pairs as for conv_spec; "same" gives
        out = in * stride (the adjoint of a "same" convolution of that size).
    output_padding: a non-negative int or one per axis, each smaller than
        max(stride, dilation) on its axis; must be 0 with padding="same".

    Output extent per axis (PyTorch's rule): (in - 1) * stride - before - after
    + dilation * (k - 1) + output_padding + 1, which must be >= 1.
    """
    x_shape, w_shape, rank = _shapes(x_shape, w_shape, "(*kernel_size, C_out // groups, C_in)")
    in_spatial, kernel_size = x_shape[1:-1], w_shape[:-2]
    in_channels = x_shape[-1]
    if w_shape[-1] != in_channels:
        raise ValueError(f"w of shape {w_shape} needs C_in = {in_channels} on its last axis for x of shape {x_shape}")
    groups = _groups(groups, C_in=in_channels)
    stride = _per_axis("stride", stride, rank, minimum=1)
    dilation = _per_axis("dilation", dilation, rank, minimum=1)
    output_padding = _per_axis("output_padding", output_padding, rank, minimum=0)
    for axis, (s, d, p) in enumerate(zip(stride, dilation, output_padding)):
        if p >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than max(stride, dilation) = {max(s, d)} on spatial "
                f"axis {axis}, got {p}"
            )
    if isinstance(padding, str) and padding == "same":
        if any(output_padding):
            raise ValueError(f"output_padding must be 0 with padding='same', got {shown(output_padding)}")
        before, after = _same_padding(tuple(n * s for n, s in zip(in_spatial, stride)), kernel_size, stride, dilation)
        output_padding = tuple(max(s - d * (k - 1) - 1, 0) for k, s, d in zip(kernel_size, stride, dilation))
    else:
        before, after = _explicit_padding(padding, rank)

    out_spatial = []
    for axis, (n, k, s, d, b, a, p) in enumerate(
        zip(in_spatial, kernel_size, stride, dilation, before, after, output_padding)
    ):
        full = (n - 1) * s + d * (k - 1) + p + 1
        if full > INT64_MAX:
            raise ValueError(
                f"stride={s}, dilation={d} with kernel size {k} make spatial axis {axis} of size {n} "
                f"larger than 2**63 - 1"
            )
        if full - b - a < 1:
            raise ValueError(
                f"padding={shown(padding)} crops {b + a} samples from the {full} of the transposed "
                f"convolution on spatial axis {axis}, leaving none"
            )
        out_spatial.append(full - b - a)
    return ConvSpec(
        rank=rank, in_spatial=in_spatial, kernel_size=kernel_size, in_channels=in_channels,
        out_channels=w_shape[-2] * groups, stride=stride, dilation=dilation, pad_before=before, pad_after=after,
        output_padding=output_padding, groups=groups, padding_mode="zeros", out_spatial=tuple(out_spatial),
    )


def _shapes(
    x_shape: Sequence[int], w_shape: Sequence[int], w_layout: str
) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(x_shape, w_shape, rank) as int tuples after checking ranks and non-empty axes."""
    x_shape, w_shape = tuple(map(int, x_shape)), tuple(map(int, w_shape))
    rank = len(x_shape) - 2
    if rank not in (1, 2, 3) or min(x_shape[1:]) < 1 or x_shape[0] < 0:
        raise ValueError(
            f"x must have shape (N, *spatial, C_in) with 1 to 3 non-empty spatial axes and C_in >= 1, "
            f"got shape {x_shape}"
        )
    if len(w_shape) != rank + 2 or min(w_shape) < 1:
        raise ValueError(
            f"w must have shape {w_layout} with {rank} non-empty kernel axes to match x of shape "
            f"{x_shape}, got shape {w_shape}"
        )
    return x_shape, w_shape, rank


def _as_int(value: object, minimum: int) -> int | None:
    """value as a Python int if it is an int or NumPy integer (not a bool) in [minimum, INT64_MAX], else None."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    value = int(value)
    return value if minimum <= value <= INT64_MAX else None


def _groups(groups: object, **channels: int) -> int:
    """groups as an int after checking it is positive and divides every given channel count."""
    value = _as_int(groups, 1)
    if value is None or any(count % value for count in channels.values()):
        counts = " and ".join(f"{name} = {count}" for name, count in channels.items())
        raise ValueError(f"groups must be a positive int dividing {counts}, got {shown(groups)}")
    return value


def _per_axis(name: str, value: object, rank: int, minimum: int) -> tuple[int, ...]:
    """An int >= minimum, or a tuple/list of `rank` of them, as a tuple of `rank` ints."""
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    ints = [_as_int(item, minimum) for item in items]
    if len(ints) != rank or None in ints:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} int or a tuple of {rank} {kind} ints, got {shown(value)}")
    return tuple(ints)


def window_padding(
    padding: Padding, in_spatial: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(before, after) per axis of a sliding window (conv kernel or pooling window): "same" by the
    TensorFlow rule, anything else as explicit padding."""
    if isinstance(padding, str) and padding == "same":
        return _same_padding(in_spatial, window, stride, dilation)
    return _explicit_padding(padding, len(in_spatial))


def _explicit_padding(padding: object, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pad_before, pad_after) from "valid", an int, or `rank` entries each an int or a (before, after) pair."""
    if isinstance(padding, str) and padding == "valid":
        return (0,) * rank, (0,) * rank
    entries = padding if isinstance(padding, (tuple, list)) else (padding,) * rank
    pairs = [entry if isinstance(entry, (tuple, list)) else (entry, entry) for entry in entries]
    ints = [[_as_int(item, 0) for item in pair] for pair in pairs]
    if len(ints) != rank or any(len(pair) != 2 or None in pair for pair in ints):
        raise ValueError(
            f"padding must be 'valid', 'same', a non-negative int, or a tuple of {rank} entries each a "
            f"non-negative int or a (before, after) pair of them, got {shown(padding)}"
        )
    return tuple(pair[0] for pair in ints), tuple(pair[1] for pair in ints)


def _same_padding(
    in_spatial: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """TensorFlow "same" padding: out = ceil(in / stride), any odd extra sample at the end."""
    totals = [
        max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        for n, k, s, d in zip(in_spatial, kernel_size, stride, dilation)
    ]
    return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
