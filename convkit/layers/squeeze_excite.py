"""SqueezeExcite: the channel attention block of SENet (Hu et al. 2018) as one layer."""
from __future__ import annotations

import math

import numpy as np

from .. import initializers, ops
from .._validate import check_positive_int
from ..registry import register_layer
from .base import Layer, Shape


@register_layer
class SqueezeExcite(Layer):
    """y = x * sigmoid(W2 relu(W1 mean(x) + b1) + b2), the gate broadcast over the spatial axes.

    x (N, *spatial, C) -> same shape. The squeeze is a global average pool; the excitation two Dense steps
    C -> max(1, C // ratio) (relu) -> C (sigmoid). Weights: reduce_kernel (C, C_r), reduce_bias (C_r,),
    expand_kernel (C_r, C), expand_bias (C,).
    """

    def __init__(self, ratio: int = 16, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.ratio = check_positive_int(ratio, "ratio")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"SqueezeExcite {self.name!r} expects inputs (N, *spatial, C), got input_shape "
                             f"{input_shape} (without the batch axis)")
        channels = input_shape[-1]
        reduced = max(1, channels // self.ratio)
        self.reduce_kernel = self.add_weight("reduce_kernel", (channels, reduced), self.kernel_initializer)
        self.reduce_bias = self.add_weight("reduce_bias", (reduced,), self.bias_initializer, decay=False)
        self.expand_kernel = self.add_weight("expand_kernel", (reduced, channels), self.kernel_initializer)
        self.expand_bias = self.add_weight("expand_bias", (channels,), self.bias_initializer, decay=False)

    def flops(self, input_shape: Shape) -> int:
        channels, reduced = self.reduce_kernel.shape
        return 2 * math.prod(input_shape) + 4 * channels * reduced

    def _gate_shape(self, x: np.ndarray) -> tuple:
        return (x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1])

    def forward(self, x, training=False):
        squeezed = ops.global_avg_pool(x)
        hidden = ops.gemm(squeezed, self.reduce_kernel.value, bias=self.reduce_bias.value, activation="relu")
        logits = ops.gemm(hidden, self.expand_kernel.value, bias=self.expand_bias.value)
        gate = ops.sigmoid(logits, out=logits)
        if training:
            self.save_for_backward(x, squeezed, hidden, gate)
        return x * gate.reshape(self._gate_shape(x))

    def backward(self, dy):
        x, squeezed, hidden, gate = self.saved()
        spatial_axes = tuple(range(1, x.ndim - 1))
        d_gate = (dy * x).sum(axis=spatial_axes)
        d_expand = ops.sigmoid_backward(d_gate, gate)
        d_hidden = ops.gemm(d_expand, self.expand_kernel.value, transpose_b=True) * (hidden > 0)
        d_squeezed = ops.gemm(d_hidden, self.reduce_kernel.value, transpose_b=True)
        if self.trainable:
            self.accumulate(self.expand_kernel, ops.gemm(hidden, d_expand, transpose_a=True))
            self.accumulate(self.expand_bias, d_expand.sum(axis=0))
            self.accumulate(self.reduce_kernel, ops.gemm(squeezed, d_hidden, transpose_a=True))
            self.accumulate(self.reduce_bias, d_hidden.sum(axis=0))
        return dy * gate.reshape(self._gate_shape(x)) + ops.global_avg_pool_backward(
            d_squeezed.astype(x.dtype, copy=False), x.shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "ratio": self.ratio,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}
