"""Argument normalisation and validation for pooling (1 to 3 spatial axes), and the window bounds the core runs.

Data are channels-last: x is (N, *spatial, C) and the output (N, *out_spatial, C).

Sliding windows (max_pool, avg_pool) follow PyTorch: output extent per axis is
(in + before + after - dilation * (pool - 1) - 1) / stride + 1, rounded down, or up with ceil_mode; with
ceil_mode the last window is dropped when it would start in the right padding (every window starts inside
the input or the left padding). Adaptive windows follow PyTorch too: output index i of an axis of size n
pooled to m reads [floor(i * n / m), ceil((i + 1) * n / m)).

The core never sees the options: it gets, per axis, the input indices each output index reads (the first,
one past the last, and the step) and the window's tap count including padding (avg_pool's divisor with
count_include_pad). Every invalid argument raises ValueError naming the argument and its value.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._validate import shown
from .conv_spec import INT64_MAX, IntOrTuple, Padding, _per_axis, window_padding


@dataclass(frozen=True)
class AxisWindows:
    """Output index o of one axis reads input indices begin[o], begin[o] + step, ... < end[o] (never empty).

    padded_count[o] is the number of the window's taps that lie in the input or its padding (the taps past
    the right padding, which ceil_mode can add, are not counted, as in PyTorch). Tuples of Python ints:
    immutable (the windows of a spec are cached) and quick for the core's bindings to read.
    """

    begin: tuple[int, ...]
    end: tuple[int, ...]
    padded_count: tuple[int, ...]
    step: int

    def as_core(self) -> tuple:
        return self.begin, self.end, self.padded_count, self.step


SINGLETON_AXIS = AxisWindows((0,), (1,), (1,), 1)

# About what one output index's window costs while a call runs: three Python ints in tuples, then three
# int64 in the core's copy. Windows count against the workspace limit.
WINDOW_BYTES = 128


@dataclass(frozen=True)
class PoolSpec:
    """Normalised arguments of one sliding-window pooling; one entry per spatial axis in every tuple."""

    rank: int
    in_spatial: tuple[int, ...]
    pool_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    ceil_mode: bool
    out_spatial: tuple[int, ...]


def check_pooled_shape(x_shape: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """(x_shape, rank) after checking x is (N, *spatial, C) with 1 to 3 non-empty spatial axes and C >= 1."""
    x_shape = tuple(map(int, x_shape))
    rank = len(x_shape) - 2
    if rank not in (1, 2, 3) or min(x_shape[1:]) < 1 or x_shape[0] < 0:
        raise ValueError(
            f"x must have shape (N, *spatial, C) with 1 to 3 non-empty spatial axes and C >= 1, got shape {x_shape}"
        )
    return x_shape, rank


def pool_spec(
    x_shape: Sequence[int],
    pool_size: IntOrTuple,
    *,
    stride: IntOrTuple | None = None,
    padding: Padding = "valid",
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> PoolSpec:
    """Validate and normalise the arguments of a sliding-window pooling.

    pool_size, stride (None: pool_size), dilation: a positive int or one per spatial axis.
    padding: "valid"; "same" (TensorFlow rule, as conv_spec: out = ceil(in / stride) without ceil_mode);
        a non-negative int; or one entry per axis, each an int or a (before, after) pair. Every window must
        read at least one input sample: padding that leaves a window all padding is refused.
    ceil_mode: round the output extent up (PyTorch), keeping only windows that start in the input or the
        left padding.
    """
    x_shape, rank = check_pooled_shape(x_shape)
    in_spatial = x_shape[1:-1]
    pool_size = _per_axis("pool_size", pool_size, rank, minimum=1)
    stride = pool_size if stride is None else _per_axis("stride", stride, rank, minimum=1)
    dilation = _per_axis("dilation", dilation, rank, minimum=1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {shown(ceil_mode)}")
    before, after = window_padding(padding, in_spatial, pool_size, stride, dilation)

    out_spatial = []
    for axis, (n, k, s, d, b, a) in enumerate(zip(in_spatial, pool_size, stride, dilation, before, after)):
        padded, span = n + b + a, d * (k - 1) + 1
        if padded > INT64_MAX:
            raise ValueError(f"padding={shown(padding)} makes spatial axis {axis} of size {n} larger than 2**63 - 1")
        if span > padded:
            raise ValueError(
                f"pool_size {k} with dilation {d} spans {span} samples, more than the {padded} of the padded "
                f"input on spatial axis {axis} (x shape {x_shape}, padding={shown(padding)})"
            )
        out = -(-(padded - span) // s) + 1 if ceil_mode else (padded - span) // s + 1
        if ceil_mode and (out - 1) * s >= n + b:
            out -= 1
        out_spatial.append(out)
    spec = PoolSpec(rank=rank, in_spatial=in_spatial, pool_size=pool_size, stride=stride, dilation=dilation,
                    pad_before=before, pad_after=after, ceil_mode=bool(ceil_mode), out_spatial=tuple(out_spatial))
    for axis in range(rank):
        if min(sliding_windows(spec, axis).begin) < 0:
            raise ValueError(
                f"padding={shown(padding)} leaves a window of spatial axis {axis} (size {in_spatial[axis]}, pool_size "
                f"{pool_size[axis]}, dilation {dilation[axis]}) reading padding only"
            )
    return spec


@functools.lru_cache(maxsize=256)
def sliding_windows(spec: PoolSpec, axis: int) -> AxisWindows:
    """The windows of one axis; begin is -1 where a window reads padding only (pool_spec refuses those)."""
    n, k, s, d = spec.in_spatial[axis], spec.pool_size[axis], spec.stride[axis], spec.dilation[axis]
    before, after = spec.pad_before[axis], spec.pad_after[axis]
    begin, end, padded_count = [], [], []
    for o in range(spec.out_spatial[axis]):
        start = o * s - before
        first_tap, last_tap = max(0, -(start // d)), min(k - 1, (n - 1 - start) // d)  # -(a // d): ceil(-a / d)
        begin.append(start + first_tap * d if first_tap <= last_tap else -1)
        end.append(start + last_tap * d + 1 if first_tap <= last_tap else 0)
        # Taps inside [-before, in + after): only the right end can fall outside (ceil_mode).
        padded_count.append(min(k - 1, (n + after - 1 - start) // d) + 1)
    return AxisWindows(tuple(begin), tuple(end), tuple(padded_count), min(d, n))  # a step >= n reads one tap


@functools.lru_cache(maxsize=256)
def adaptive_windows(n: int, m: int) -> AxisWindows:
    """PyTorch's adaptive bins: output i of m reads [floor(i * n / m), ceil((i + 1) * n / m)) of n inputs."""
    begin = tuple(i * n // m for i in range(m))
    end = tuple(-(-((i + 1) * n) // m) for i in range(m))
    return AxisWindows(begin, end, tuple(e - b for b, e in zip(begin, end)), 1)


def adaptive_output_size(x_shape: Sequence[int], output_size: IntOrTuple) -> tuple[int, ...]:
    """output_size (an int or one per spatial axis, each >= 1) as a tuple."""
    _, rank = check_pooled_shape(x_shape)
    return _per_axis("output_size", output_size, rank, minimum=1)


def core_windows(axes: Sequence[AxisWindows]) -> list[tuple]:
    """The core's three axes (D, H, W): leading singleton axes, then the given ones."""
    return [SINGLETON_AXIS.as_core()] * (3 - len(axes)) + [a.as_core() for a in axes]
