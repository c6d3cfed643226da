"""Activation layers: Activation (any activation by name), ReLU, LeakyReLU, ELU, Softmax, PReLU (learned
slopes) and Maxout. Elementwise and softmax layers keep the shape; Maxout divides the channels by k. Each
runs the C++ activation ops of convkit.ops, forward and backward."""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from .. import initializers, ops
from .._validate import check_positive_int, check_real
from ..registry import register_layer
from . import activations
from .base import Layer, Shape


def _non_batch_axis(axis, input_shape: Shape, layer: Layer) -> None:
    """Refuse an axis that is not one of the non-batch axes of inputs (N, *input_shape)."""
    ndim = len(input_shape) + 1
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim < axis < ndim or axis == 0:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis must be a non-batch axis of inputs of rank "
                         f"{ndim}, got {axis!r}")


class _Elementwise(Layer):
    """y = f(x), the backward from y or x as `_takes` says. Subclasses set _forward(x) and _backward(dy, saved)."""

    _takes = "y"

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, dy: np.ndarray, saved: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)  # one operation per value, an estimate

    def forward(self, x, training=False):
        y = self._forward(x)
        if training:
            self.save_for_backward(y if self._takes == "y" else x)
        return y

    def backward(self, dy):
        (saved,) = self.saved()
        return self._backward(dy, saved)


@register_layer
class Activation(_Elementwise):
    """y = activation(x) for any registered activation: a name of ops.ACTIVATIONS ('relu', 'relu6',
    'leaky_relu', 'elu', 'sigmoid', 'tanh', 'gelu', 'softmax', 'log_softmax', 'hard_sigmoid', 'hard_swish',
    'linear') with its parameters as keywords (alpha for leaky_relu / elu, approximate for gelu, axis for
    softmax / log_softmax), or one added by convkit.layers.activations.register_activation (no parameters).

        Activation("softmax", axis=1)
        Activation("gelu", approximate="tanh")
    """

    def __init__(self, activation: str, *, name: Optional[str] = None, trainable: bool = True,
                 dtype: str = "float32", input_shape: Optional[Shape] = None, **params) -> None:
        super().__init__(name=name, trainable=trainable, dtype=dtype, input_shape=input_shape)
        self.activation, self.params = activation, params
        if activation in ops.ACTIVATIONS:
            # Raises for unknown parameters or bad values; an axis is checked against the input shape at build.
            ops.activation(np.zeros(1), activation, **{**params, **({"axis": 0} if "axis" in params else {})})
            self._takes = ops.ACTIVATION_BACKWARD_INPUT[activation]
            self._registered = None
        else:
            if params:
                raise TypeError(f"activation {activation!r} takes no parameters, got {sorted(params)}")
            self._registered = activations.get_activation(activation)
            self._takes = "x" if self._registered.needs_input else "y"

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if "axis" in self.params:
            _non_batch_axis(self.params["axis"], input_shape, self)
        return input_shape

    def _forward(self, x):
        if self._registered is None:
            return ops.activation(x, self.activation, **self.params)
        # A registered forward may write over its argument when its backward needs y only: never over x.
        return self._registered.forward(x if self._registered.needs_input else x.copy())

    def _backward(self, dy, saved):
        if self._registered is None:
            return ops.activation_backward(dy, saved, self.activation, **self.params)
        x, y = (saved, None) if self._takes == "x" else (None, saved)
        return self._registered.backward(dy, x, y)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation, **self.params}


@register_layer
class ReLU(_Elementwise):
    """max(x, 0) (Keras' ReLU): negative_slope > 0 gives a leaky ReLU (x for x > 0, negative_slope * x
    else); max_value caps the output (max_value=6: ReLU6 of MobileNet v1/v2). max_value and negative_slope
    together are not supported."""

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_value = None if max_value is None else check_real(max_value, "max_value")
        self.negative_slope = check_real(negative_slope, "negative_slope")
        if self.max_value is not None and not self.max_value > 0:
            raise ValueError(f"max_value must be None or > 0, got {max_value!r}")
        if self.negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope!r}")
        if self.max_value is not None and self.negative_slope:
            raise ValueError(f"ReLU takes max_value or negative_slope, not both (got max_value={max_value!r}, "
                             f"negative_slope={negative_slope!r})")

    def _forward(self, x):
        if self.max_value is not None:
            return ops.clipped_relu(x, self.max_value)
        return ops.leaky_relu(x, self.negative_slope) if self.negative_slope else ops.relu(x)

    def _backward(self, dy, y):
        if self.max_value is not None:
            return ops.clipped_relu_backward(dy, y, self.max_value)
        return ops.leaky_relu_backward(dy, y, self.negative_slope) if self.negative_slope else ops.relu_backward(dy, y)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope}


class _OneParameter(_Elementwise):
    """An elementwise activation op with one parameter `alpha` >= 0."""

    _op: Callable
    _op_backward: Callable

    def __init__(self, alpha: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = check_real(alpha, "alpha")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")

    def _forward(self, x):
        return type(self)._op(x, self.alpha)

    def _backward(self, dy, y):
        return type(self)._op_backward(dy, y, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


@register_layer
class LeakyReLU(_OneParameter):
    """x for x > 0, alpha * x else. alpha = 0.3 by default, as Keras (PyTorch and activation='leaky_relu'
    use 0.01)."""

    _op, _op_backward = ops.leaky_relu, ops.leaky_relu_backward

    def __init__(self, alpha: float = 0.3, **kwargs) -> None:
        super().__init__(alpha, **kwargs)


@register_layer
class ELU(_OneParameter):
    """x for x > 0, alpha * (exp(x) - 1) else (alpha >= 0, default 1)."""

    _op, _op_backward = ops.elu, ops.elu_backward

    def __init__(self, alpha: float = 1.0, **kwargs) -> None:
        super().__init__(alpha, **kwargs)


@register_layer
class Softmax(_Elementwise):
    """Softmax along `axis` (default -1, the channels; any non-batch axis of the input)."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = axis

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _non_batch_axis(self.axis, input_shape, self)
        return input_shape

    def _forward(self, x):
        return ops.softmax(x, self.axis)

    def _backward(self, dy, y):
        return ops.softmax_backward(dy, y, self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


PRELU_MODES = ("channel", "scalar")


@register_layer
class PReLU(Layer):
    """Parametric ReLU (He et al. 2015): x for x > 0, alpha * x else, alpha learned. mode='channel': one
    alpha per channel (the last axis), shared over the other axes (Keras' shared_axes over the spatial
    axes); 'scalar': one alpha for every value. Weight alpha (C,) or (1,), initialised to 0.25 (the paper,
    PyTorch) by default; never weight-decayed (decay=False), as decay would push it to a plain ReLU."""

    def __init__(self, mode: str = "channel", alpha_initializer=None, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in PRELU_MODES:
            raise ValueError(f"mode must be one of {PRELU_MODES}, got {mode!r}")
        self.mode = mode
        self.alpha_initializer = initializers.get(alpha_initializer or initializers.constant(0.25))

    def build(self, input_shape: Shape) -> None:
        self.alpha = self.add_weight("alpha", (input_shape[-1],) if self.mode == "channel" else (1,),
                                     self.alpha_initializer, decay=False)

    def flops(self, input_shape: Shape) -> int:
        return 2 * math.prod(input_shape)

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x)
        return ops.prelu(x, self.alpha.value)

    def backward(self, dy):
        (x,) = self.saved()
        dx, dalpha = ops.prelu_backward(dy, x, self.alpha.value)
        self.accumulate(self.alpha, dalpha)
        return dx

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode,
                "alpha_initializer": initializers.serialize(self.alpha_initializer)}


@register_layer
class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013) over k pieces along the channel axis: x (N, ..., C) -> (N, ..., C / k),
    unit c the maximum of channels c*k ... c*k + k - 1 (k must divide C). Usually after a Dense or Conv with
    k times the units."""

    def __init__(self, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = check_positive_int(k, "k")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if input_shape[-1] % self.k:
            raise ValueError(f"Maxout {self.name!r}: k={self.k} must divide the {input_shape[-1]} channels")
        return (*input_shape[:-1], input_shape[-1] // self.k)

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape)  # a comparison per input value

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x)
        return ops.maxout(x, self.k)

    def backward(self, dy):
        (x,) = self.saved()
        return ops.maxout_backward(dy, x, self.k)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}
