"""Layers that merge several inputs (functional API): Add, Multiply, Concatenate. They take a list of arrays
and their backward returns a list of gradients, one per input."""
from __future__ import annotations

import math

import numpy as np

from ..registry import register_layer
from .base import Layer, Shape


class _Merge(Layer):
    multi_input = True

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        if len(input_shape) < 2 or any(s != input_shape[0] for s in input_shape):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs two or more inputs of one shape, got "
                             f"{input_shape}")
        return input_shape[0]

    def flops(self, input_shape: list[Shape]) -> int:
        return (len(input_shape) - 1) * math.prod(input_shape[0])


@register_layer
class Add(_Merge):
    """Elementwise sum of inputs of one shape (residual connections)."""

    def forward(self, xs, training=False):
        if training:
            self.save_for_backward(len(xs))
        return sum(xs[1:], xs[0].copy())

    def backward(self, dy):
        (count,) = self.saved()
        return [dy] * count


@register_layer
class Multiply(_Merge):
    """Elementwise product of inputs of one shape."""

    def forward(self, xs, training=False):
        if training:
            self.save_for_backward(xs)
        return math.prod(xs[1:], start=xs[0].copy())

    def backward(self, dy):
        (xs,) = self.saved()
        return [math.prod((x for j, x in enumerate(xs) if j != i), start=dy) for i in range(len(xs))]


@register_layer
class Concatenate(_Merge):
    """Concatenation along `axis` (default -1, the channels; axis 0, the batch, is refused): inputs must agree
    on every other axis (Inception branches, DenseNet's dense connections)."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = axis

    def _axis(self, ndim: int) -> int:
        """The axis among the non-batch axes of inputs of ndim (batch excluded) dimensions."""
        axis = self.axis + ndim + 1 if self.axis < 0 else self.axis
        if not 1 <= axis <= ndim:
            raise ValueError(f"axis={self.axis} is not a non-batch axis of inputs of rank {ndim + 1}")
        return axis - 1

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        axis = self._axis(len(input_shape[0]))
        drop = [s[:axis] + s[axis + 1:] for s in input_shape]
        agree = all(len(s) == len(input_shape[0]) and d == drop[0] for s, d in zip(input_shape, drop))
        if len(input_shape) < 2 or not agree:
            raise ValueError(f"Concatenate {self.name!r} needs two or more inputs agreeing except on axis "
                             f"{self.axis}, got {input_shape}")
        return (*input_shape[0][:axis], sum(s[axis] for s in input_shape), *input_shape[0][axis + 1:])

    def flops(self, input_shape: list[Shape]) -> int:
        return 0

    def forward(self, xs, training=False):
        axis = self._axis(xs[0].ndim - 1) + 1
        if training:
            self.save_for_backward(axis, [x.shape[axis] for x in xs])
        return np.concatenate(xs, axis=axis)

    def backward(self, dy):
        axis, sizes = self.saved()
        return np.split(dy, np.cumsum(sizes)[:-1], axis=axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
