"""Regularisation layers that drop at random in training: Dropout, SpatialDropout1D/2D/3D, DropConnect (a
wrapper of a Dense or convolution layer) and StochasticDepth (a residual sum). All use inverted scaling
(kept values times 1 / (1 - rate)), so forward(training=False) is the identity (the plain kernel for
DropConnect, shortcut + branch for StochasticDepth).

Random numbers: seed=None draws from convkit.random's global generator (reset by convkit.random.seed(n));
seed=n gives the layer its own convkit.random.Generator(n). Either way the masks depend only on the seed and
on how many draws came before, never on the thread count.
"""
from __future__ import annotations

import math
from typing import Optional

from .. import ops, random
from .._validate import check_real
from ..registry import get_layer_class, register_layer
from .base import Layer, Shape
from .conv import _Conv
from .core import Dense


class _Random(Layer):
    """A layer that draws masks with probability `rate` of dropping, from `generator`."""

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = check_real(rate, "rate")
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.seed = seed
        self.generator: Optional[random.Generator] = None if seed is None else random.Generator(seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@register_layer
class Dropout(_Random):
    """Inverted dropout of every value (ops.dropout): in training each value is kept with probability
    1 - rate and scaled by 1 / (1 - rate), or set to 0. Any input shape."""

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)

    def forward(self, x, training=False):
        y, mask = ops.dropout(x, self.rate, training=training, generator=self.generator)
        if training:
            self.save_for_backward(mask)
        return y

    def backward(self, dy):
        (mask,) = self.saved()
        return ops.dropout_backward(dy, mask, self.rate)


class _SpatialDropout(_Random):
    """Drops whole feature maps (ops.spatial_dropout): one decision per sample and channel."""

    rank = 2

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != self.rank + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (N, {self.rank} spatial axes, C), "
                             f"got input_shape {input_shape} (without the batch axis)")
        return input_shape

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)

    def forward(self, x, training=False):
        self.compute_output_shape(x.shape[1:])
        y, mask = ops.spatial_dropout(x, self.rate, training=training, generator=self.generator)
        if training:
            self.save_for_backward(mask)
        return y

    def backward(self, dy):
        (mask,) = self.saved()
        return ops.spatial_dropout_backward(dy, mask, self.rate)


@register_layer
class SpatialDropout1D(_SpatialDropout):
    """Spatial dropout of x (N, W, C): a mask (N, C) shared along W."""

    rank = 1


@register_layer
class SpatialDropout2D(_SpatialDropout):
    """Spatial dropout of x (N, H, W, C): a mask (N, C) shared over H and W."""

    rank = 2


@register_layer
class SpatialDropout3D(_SpatialDropout):
    """Spatial dropout of x (N, D, H, W, C): a mask (N, C) shared over D, H and W."""

    rank = 3


def _kernels(layer: Layer) -> list:
    """The kernel Parameters of a Dense or convolution layer (the bias is not among them)."""
    return layer._kernels() if isinstance(layer, _Conv) else [layer.kernel]


@register_layer
class DropConnect(_Random):
    """DropConnect (Wan et al. 2013) around a Dense or convolution layer: in training, each call draws one
    mask per kernel element (ops.drop_connect) and runs the wrapped layer with the kernel masked and scaled
    by 1 / (1 - rate); the bias is not dropped. At inference the wrapped layer runs with its plain kernel.

    The weights are the wrapped layer's (their names '<wrapped name>/kernel', ...), and so are the shapes,
    dtype and FLOPs. Freezing the wrapper freezes the wrapped layer.

        DropConnect(Dense(128, activation="relu"), rate=0.5)
    """

    def __init__(self, layer: Layer, rate: float, seed: Optional[int] = None, **kwargs) -> None:
        if not isinstance(layer, (Dense, _Conv)):
            raise TypeError(f"layer must be a Dense or convolution layer, got {layer!r}")
        kwargs.setdefault("dtype", layer.dtype)
        kwargs.setdefault("trainable", layer.trainable)
        super().__init__(rate, seed, **kwargs)
        if self.dtype != layer.dtype:
            raise ValueError(f"dtype {self.dtype!r} differs from the wrapped layer's {layer.dtype!r}")
        self.layer = layer
        self.layer.trainable = self.trainable
        self._weights = layer._weights  # one list: parameters() and freezing see the wrapped layer's weights
        self._state = layer._state

    @Layer.trainable.setter
    def trainable(self, value: bool) -> None:
        Layer.trainable.fset(self, value)
        self.layer.trainable = value

    def build(self, input_shape: Shape) -> None:
        self.layer.build_once(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.layer.compute_output_shape(input_shape)

    def flops(self, input_shape: Shape) -> int:
        return self.layer.flops(input_shape)

    def _with_kernels(self, values: list, run):
        """run() with the wrapped layer's kernels set to `values` (None: unchanged), then put back."""
        kernels = _kernels(self.layer)
        plain = [k.value for k in kernels]
        try:
            for kernel, value in zip(kernels, values):
                if value is not None:
                    kernel.value = value
            return run()
        finally:
            for kernel, value in zip(kernels, plain):
                kernel.value = value

    def forward(self, x, training=False):
        if not training:
            return self.layer.forward(x, False)
        dropped = [ops.drop_connect(k.value, self.rate, generator=self.generator) for k in _kernels(self.layer)]
        y = self._with_kernels([w for w, _ in dropped], lambda: self.layer.forward(x, True))
        # The wrapped layer's saved values travel with this call's (a network keeps them per call of the wrapper).
        self.save_for_backward(dropped, self.layer._saved)
        return y

    def backward(self, dy):
        dropped, self.layer._saved = self.saved()
        kernels = _kernels(self.layer)
        # The wrapped layer adds its gradient with respect to the dropped kernel; the kernel's own gradient is
        # that masked and scaled (ops.drop_connect_backward), added to what the grad held before.
        before = [k.grad.copy() for k in kernels]
        for k in kernels:
            k.grad[...] = 0
        dx = self._with_kernels([w for w, _ in dropped], lambda: self.layer.backward(dy))
        for kernel, held, (_, mask) in zip(kernels, before, dropped):
            kernel.grad[...] = held + ops.drop_connect_backward(kernel.grad, mask, self.rate)
        return dx

    def get_config(self) -> dict:
        config = super().get_config()
        del config["trainable"], config["dtype"]  # the wrapped layer's
        return {**config, "layer": {"class_name": self.layer.registry_name, "config": self.layer.get_config()}}

    @classmethod
    def from_config(cls, config: dict) -> "DropConnect":
        config = dict(config)
        entry = config.pop("layer")
        return cls(get_layer_class(entry["class_name"]).from_config(entry["config"]), **config)


@register_layer
class StochasticDepth(_Random):
    """Stochastic depth (Huang et al. 2016) of a residual block, two inputs [shortcut, branch] of one shape:
    in training y = shortcut + mask[n] * branch / (1 - rate), the branch of each sample dropped with
    probability rate (ops.stochastic_depth); at inference y = shortcut + branch.

        y = StochasticDepth(0.1)([x, branch])
    """

    multi_input = True

    def compute_output_shape(self, input_shape: list) -> Shape:
        if len(input_shape) != 2 or input_shape[0] != input_shape[1]:
            raise ValueError(f"StochasticDepth {self.name!r} takes [shortcut, branch] of one shape, got {input_shape}")
        return input_shape[0]

    def flops(self, input_shape: list) -> int:
        return 2 * math.prod(input_shape[0])

    def forward(self, xs, training=False):
        self.compute_output_shape([x.shape[1:] for x in xs])
        y, mask = ops.stochastic_depth(xs[0], xs[1], self.rate, training=training, generator=self.generator)
        if training:
            self.save_for_backward(mask)
        return y

    def backward(self, dy):
        (mask,) = self.saved()
        return list(ops.stochastic_depth_backward(dy, mask, self.rate))
