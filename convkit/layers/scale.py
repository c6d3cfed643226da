"""LayerScale: a learned per-channel multiplier on a residual branch (CaiT, ConvNeXt)."""
from __future__ import annotations

import math

import numpy as np

from .. import initializers
from .._validate import check_real
from ..registry import register_layer
from .base import Layer, Shape


@register_layer
class LayerScale(Layer):
    """y = x * gamma, gamma (C,) broadcast over every other axis; x (N, ..., C) -> same shape.

    gamma starts at init_value (1e-6 in ConvNeXt), so a freshly initialised residual branch barely perturbs
    the identity path and deep networks start out close to shallow ones. Not weight-decayed."""

    def __init__(self, init_value: float = 1e-6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_value = check_real(init_value, "init_value")

    def build(self, input_shape: Shape) -> None:
        self.gamma = self.add_weight("gamma", (input_shape[-1],), initializers.constant(self.init_value),
                                     decay=False)

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x)
        return x * self.gamma.value

    def backward(self, dy):
        (x,) = self.saved()
        if self.gamma.trainable:
            channels = x.shape[-1]
            dgamma = np.einsum("ic,ic->c", dy.reshape(-1, channels), x.reshape(-1, channels),
                               dtype=np.float64)  # a long sum: accumulate in float64
            self.accumulate(self.gamma, dgamma.astype(self.gamma.value.dtype))
        return dy * self.gamma.value

    def get_config(self) -> dict:
        return {**super().get_config(), "init_value": self.init_value}
