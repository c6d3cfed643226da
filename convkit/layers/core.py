"""Dense, Flatten, Reshape."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import initializers, ops
from .._validate import check_positive_int
from ..registry import register_layer
from . import activations
from ._config import as_lists, as_tuples
from .base import Layer, Shape


@register_layer
class Dense(Layer):
    """y = activation(x @ kernel + bias) on the last axis; x (N, ..., in) -> (N, ..., units).

    kernel (in, units), bias (units,). activation: None, 'relu', 'leaky_relu' (fused into the GEMM), or any
    activation registered in convkit.layers.activations.
    """

    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.activation = activations.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Shape) -> None:
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer, decay=False) if self.use_bias
                     else None)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def flops(self, input_shape: Shape) -> int:
        rows = math.prod(input_shape[:-1])
        return rows * self.units * (2 * input_shape[-1] + self.use_bias)

    def forward(self, x, training=False):
        x2 = x.reshape(-1, x.shape[-1])
        out = ops.gemm(x2, self.kernel.value, bias=None if self.bias is None else self.bias.value,
                       activation=activations.epilogue(self.activation))
        z, y = activations.finish(self.activation, out)
        if training:
            self.save_for_backward(x.shape, x2, z, y)
        return y.reshape(*x.shape[:-1], self.units)

    def backward(self, dy):
        x_shape, x2, z, y = self.saved()
        dz = activations.gradient(self.activation, np.reshape(dy, y.shape), z, y)
        if self.kernel.trainable:
            self.accumulate(self.kernel, ops.gemm(x2, dz, transpose_a=True))
        if self.bias is not None and self.bias.trainable:
            self.accumulate(self.bias, dz.sum(axis=0))
        return ops.gemm(dz, self.kernel.value, transpose_b=True).reshape(x_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": None if self.activation is None else self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


@register_layer
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), a view of the input (row-major, channels last)."""

    output_is_view = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x.shape)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # not -1: NumPy cannot infer it for an empty batch

    def backward(self, dy):
        (x_shape,) = self.saved()
        return np.reshape(dy, x_shape)


@register_layer
class Reshape(Layer):
    """(N, *input_shape) -> (N, *target_shape); target_shape excludes the batch axis and may hold one -1."""

    output_is_view = True

    def __init__(self, target_shape: Shape, **kwargs) -> None:
        super().__init__(**kwargs)
        target_shape = as_tuples(target_shape)
        if (not isinstance(target_shape, tuple) or sum(d == -1 for d in target_shape) > 1
                or not all(isinstance(d, int) and (d >= 1 or d == -1) for d in target_shape)):
            raise ValueError(f"target_shape must be a tuple of positive ints with at most one -1, got {target_shape!r}")
        self.target_shape = target_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape and size != known):
            raise ValueError(f"cannot reshape input of shape {input_shape} to target_shape {self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x.shape)
        return x.reshape(x.shape[0], *self.compute_output_shape(x.shape[1:]))

    def backward(self, dy):
        (x_shape,) = self.saved()
        return np.reshape(dy, x_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": as_lists(self.target_shape)}
