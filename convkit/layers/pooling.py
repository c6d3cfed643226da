"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D, GlobalMaxPooling, GlobalAveragePooling,
AdaptiveMaxPooling, AdaptiveAveragePooling. x (N, *spatial, C); semantics of convkit.ops' pooling."""
from __future__ import annotations

import math

from .. import ops
from ..pool_spec import pool_spec
from ..registry import register_layer
from ._config import as_lists, as_tuples, per_axis
from .base import Layer, Shape


class _Pooling(Layer):
    """Sliding windows: pool_size (default 2), strides (default pool_size), padding 'valid'/'same'/ints.

    Average pooling divides by the number of input samples in each window (padding excluded, as Keras)."""

    rank = 2
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_size = per_axis(pool_size, self.rank, "pool_size")
        self.strides = self.pool_size if strides is None else per_axis(strides, self.rank, "strides")
        self.padding = as_tuples(padding)

    def _options(self) -> dict:
        return dict(stride=self.strides, padding=self.padding)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != self.rank + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (N, {self.rank} spatial axes, C), "
                             f"got input_shape {input_shape} (without the batch axis)")
        spec = pool_spec((1, *input_shape), self.pool_size, **self._options())
        return (*spec.out_spatial, input_shape[-1])

    def flops(self, input_shape: Shape) -> int:
        return math.prod(self.compute_output_shape(input_shape)) * math.prod(self.pool_size)

    def forward(self, x, training=False):
        if self.kind == "max":
            y, indices = ops.max_pool(x, self.pool_size, return_indices=True, **self._options())
            if training:
                self.save_for_backward(x, indices)
            return y
        if training:
            self.save_for_backward(x.shape, x.dtype)
        return ops.avg_pool(x, self.pool_size, count_include_pad=False, **self._options())

    def backward(self, dy):
        if self.kind == "max":
            x, indices = self.saved()
            return ops.max_pool_backward(dy, x, self.pool_size, indices=indices, **self._options())
        x_shape, dtype = self.saved()
        return ops.avg_pool_backward(dy.astype(dtype, copy=False), x_shape, self.pool_size, count_include_pad=False,
                                     **self._options())

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": as_lists(self.padding)}


def _pooling_class(kind: str, rank: int, doc: str) -> type:
    name = f"{'Max' if kind == 'max' else 'Average'}Pooling{rank}D"
    cls = type(name, (_Pooling,), {"rank": rank, "kind": kind, "__doc__": doc, "__module__": __name__})
    return register_layer(cls)


MaxPooling1D = _pooling_class("max", 1, "Max pooling over W: x (N, W, C) -> (N, W', C).")
MaxPooling2D = _pooling_class("max", 2, "Max pooling over H, W: x (N, H, W, C) -> (N, H', W', C).")
MaxPooling3D = _pooling_class("max", 3, "Max pooling over D, H, W: x (N, D, H, W, C) -> (N, D', H', W', C).")
AveragePooling1D = _pooling_class("avg", 1, "Average pooling over W: x (N, W, C) -> (N, W', C).")
AveragePooling2D = _pooling_class("avg", 2, "Average pooling over H, W: x (N, H, W, C) -> (N, H', W', C).")
AveragePooling3D = _pooling_class("avg", 3, "Average pooling over D, H, W: x (N, D, H, W, C) -> (N, D', H', W', C).")


class _AdaptivePooling(Layer):
    """Pooling to a fixed output_size (an int or one per spatial axis) whatever the input size, over PyTorch's
    adaptive bins: output i of an axis of n samples pooled to m reads [floor(i n / m), ceil((i + 1) n / m))."""

    kind = "avg"

    def __init__(self, output_size, **kwargs) -> None:
        super().__init__(**kwargs)
        self.output_size = as_tuples(output_size)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rank = len(input_shape) - 1
        if not 1 <= rank <= 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (N, 1 to 3 spatial axes, C), got "
                             f"input_shape {input_shape} (without the batch axis)")
        return (*per_axis(self.output_size, rank, "output_size"), input_shape[-1])

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)

    def forward(self, x, training=False):
        if self.kind == "max":
            y, indices = ops.adaptive_max_pool(x, self.output_size, return_indices=True)
        else:
            y, indices = ops.adaptive_avg_pool(x, self.output_size), None
        if training:
            self.save_for_backward(x, indices)
        return y

    def backward(self, dy):
        x, indices = self.saved()
        if self.kind == "max":
            return ops.adaptive_max_pool_backward(dy, x, self.output_size, indices=indices)
        return ops.adaptive_avg_pool_backward(dy.astype(x.dtype, copy=False), x.shape, self.output_size)

    def get_config(self) -> dict:
        return {**super().get_config(), "output_size": as_lists(self.output_size)}


class _GlobalPooling(_AdaptivePooling):
    """Over every spatial axis (adaptive pooling to size 1): x (N, *spatial, C) -> (N, C), or
    (N, 1, ..., 1, C) with keepdims."""

    def __init__(self, keepdims: bool = False, **kwargs) -> None:
        super().__init__(1, **kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        pooled = super().compute_output_shape(input_shape)
        return pooled if self.keepdims else pooled[-1:]

    def forward(self, x, training=False):
        return super().forward(x, training).reshape(x.shape[0], *self.compute_output_shape(x.shape[1:]))

    def backward(self, dy):
        x, _ = self.saved()
        return super().backward(dy.reshape(x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1]))

    def get_config(self) -> dict:
        config = super().get_config()
        del config["output_size"]
        return {**config, "keepdims": self.keepdims}


@register_layer(aliases=("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"))
class GlobalMaxPooling(_GlobalPooling):
    """The maximum over all spatial positions of each channel."""

    kind = "max"


@register_layer(aliases=("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"))
class GlobalAveragePooling(_GlobalPooling):
    """The mean over all spatial positions of each channel."""

    kind = "avg"


GlobalMaxPooling1D = GlobalMaxPooling2D = GlobalMaxPooling3D = GlobalMaxPooling
GlobalAveragePooling1D = GlobalAveragePooling2D = GlobalAveragePooling3D = GlobalAveragePooling


@register_layer
class AdaptiveAveragePooling(_AdaptivePooling):
    """Adaptive average pooling: x (N, *spatial, C) -> (N, *output_size, C)."""

    kind = "avg"


@register_layer
class AdaptiveMaxPooling(_AdaptivePooling):
    """Adaptive max pooling: x (N, *spatial, C) -> (N, *output_size, C)."""

    kind = "max"
