"""ZeroPadding1D/2D/3D: zeros around the spatial axes of x (N, *spatial, C)."""
from __future__ import annotations

import numbers

import numpy as np

from ..registry import register_layer
from ._config import as_lists, as_tuples
from .base import Layer, Shape


class _ZeroPadding(Layer):
    """padding: an int (every side), one int per axis (both sides), or one (before, after) pair per axis;
    ZeroPadding1D also takes (before, after)."""

    rank = 2

    def __init__(self, padding=1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.padding = self._pairs(as_tuples(padding))

    def _pairs(self, padding) -> tuple:
        def pair(p):
            p = (p, p) if isinstance(p, numbers.Integral) else p
            if not (isinstance(p, tuple) and len(p) == 2 and all(
                    isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in p)):
                raise ValueError
            return int(p[0]), int(p[1])
        try:
            if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
                return (pair(padding),) * self.rank
            if self.rank == 1 and isinstance(padding, tuple) and len(padding) == 2:  # Keras' (left, right)
                return (pair(padding),)
            if isinstance(padding, tuple) and len(padding) == self.rank:
                return tuple(pair(p) for p in padding)
            raise ValueError
        except ValueError:
            raise ValueError(f"padding must be an int >= 0, {self.rank} of them, or {self.rank} (before, after) "
                             f"pairs, got {padding!r}") from None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != self.rank + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (N, {self.rank} spatial axes, C), "
                             f"got input_shape {input_shape} (without the batch axis)")
        return (*(n + b + a for n, (b, a) in zip(input_shape, self.padding)), input_shape[-1])

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x.shape)
        return np.pad(x, ((0, 0), *self.padding, (0, 0)))

    def backward(self, dy):
        (x_shape,) = self.saved()
        inside = tuple(slice(b, b + n) for n, (b, _) in zip(x_shape[1:-1], self.padding))
        return np.ascontiguousarray(dy[(slice(None), *inside)])

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": as_lists(self.padding)}


@register_layer
class ZeroPadding1D(_ZeroPadding):
    """x (N, W, C) -> (N, W + before + after, C)."""

    rank = 1


@register_layer
class ZeroPadding2D(_ZeroPadding):
    """x (N, H, W, C) -> (N, H + top + bottom, W + left + right, C)."""

    rank = 2


@register_layer
class ZeroPadding3D(_ZeroPadding):
    """x (N, D, H, W, C) -> padded D, H, W."""

    rank = 3
