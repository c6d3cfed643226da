"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, InstanceNormalization,
LocalResponseNormalization. x (N, *spatial, C), channels last; eps = 1e-5 by default (PyTorch)."""
from __future__ import annotations

import math

from .. import initializers, ops
from .._validate import check_positive_int
from ..registry import register_layer
from ._config import as_lists, as_tuples
from .base import Layer, Shape


class _Affine(Layer):
    """A normalization followed by y = x_hat * gamma + beta (scale / center select each)."""

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def _build_affine(self, shape: Shape) -> None:
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, decay=False) if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer, decay=False) if self.center else None

    def _affine_values(self) -> tuple:
        return tuple(None if p is None else p.value for p in (self.gamma, self.beta))

    def _accumulate_affine(self, dgamma, dbeta) -> None:
        for param, grad in ((self.gamma, dgamma), (self.beta, dbeta)):
            if param is not None:
                self.accumulate(param, grad)

    def flops(self, input_shape: Shape) -> int:
        return 4 * math.prod(input_shape)  # statistics (2) and scale-shift (2) per element, an estimate

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer)}


@register_layer
class BatchNormalization(_Affine):
    """Batch normalization per channel (PyTorch's convention, see README "Normalization").

    forward(training=True) normalises with the batch statistics and updates the non-trainable state
    moving_mean / moving_variance: moving = (1 - momentum) * moving + momentum * batch (unbiased variance),
    momentum = 0.1 by default (Keras' momentum=0.99 is momentum=0.01 here). forward(training=False), and
    every forward of a frozen layer (trainable=False, as Keras), normalises with the moving statistics and
    leaves them alone. gamma, beta, moving_mean, moving_variance: (C,).
    """

    def __init__(self, momentum: float = 0.1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs) -> None:
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape: Shape) -> None:
        channels = (input_shape[-1],)
        self._build_affine(channels)
        self.moving_mean = self.add_state("moving_mean", channels, self.moving_mean_initializer)
        self.moving_variance = self.add_state("moving_variance", channels, self.moving_variance_initializer)

    def forward(self, x, training=False):
        batch_statistics = training and self.trainable
        y, stats = ops.batch_norm(x, *self._affine_values(), running_mean=self.moving_mean.value,
                                  running_var=self.moving_variance.value, training=batch_statistics,
                                  momentum=self.momentum, eps=self.epsilon)
        if training:
            self.save_for_backward(x, stats, batch_statistics)
        return y

    def backward(self, dy):
        x, stats, batch_statistics = self.saved()
        gamma = None if self.gamma is None else self.gamma.value
        dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, gamma, stats.mean, stats.inv_std, training=batch_statistics)
        self._accumulate_affine(dgamma, dbeta)
        return dx

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer)}


class _SampleNorm(_Affine):
    """Statistics per sample (no state): the same in training and inference. Subclasses give the op calls."""

    def _normalize(self, x, gamma, beta):
        raise NotImplementedError

    def _gradients(self, dy, x, gamma, stats):
        raise NotImplementedError

    def forward(self, x, training=False):
        y, stats = self._normalize(x, *self._affine_values())
        if training:
            self.save_for_backward(x, stats)
        return y

    def backward(self, dy):
        x, stats = self.saved()
        dx, dgamma, dbeta = self._gradients(dy, x, None if self.gamma is None else self.gamma.value, stats)
        self._accumulate_affine(dgamma, dbeta)
        return dx


@register_layer
class LayerNormalization(_SampleNorm):
    """Layer normalization over `axis` (default -1, the channels; or trailing axes such as (1, 2, 3) or
    (-3, -2, -1), batch axis 0 excluded), per sample. gamma, beta have the normalized axes' shape."""

    def __init__(self, axis=-1, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs) -> None:
        super().__init__(epsilon, center, scale, **kwargs)
        self.axis = as_tuples(axis)

    def _normalized_ndim(self, input_shape: Shape) -> int:
        ndim = len(input_shape) + 1
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        try:
            positive = sorted({int(a) % ndim if -ndim <= int(a) < ndim else None for a in axes})
        except TypeError:
            positive = None
        if not positive or positive != list(range(ndim - len(positive), ndim)) or 0 in positive:
            raise ValueError(f"axis must name trailing non-batch axes of inputs of rank {ndim}, got {self.axis!r}")
        return len(positive)

    def build(self, input_shape: Shape) -> None:
        self._build_affine(input_shape[len(input_shape) - self._normalized_ndim(input_shape):])

    def _normalize(self, x, gamma, beta):
        return ops.layer_norm(x, self._normalized_ndim(x.shape[1:]), gamma, beta, eps=self.epsilon)

    def _gradients(self, dy, x, gamma, stats):
        return ops.layer_norm_backward(dy, x, self._normalized_ndim(x.shape[1:]), gamma, stats.mean, stats.inv_std)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": as_lists(self.axis)}


@register_layer
class GroupNormalization(_SampleNorm):
    """Group normalization: per sample, statistics over the spatial axes and each of `groups` groups of
    consecutive channels (groups must divide C). gamma, beta: (C,)."""

    def __init__(self, groups: int = 32, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 **kwargs) -> None:
        super().__init__(epsilon, center, scale, **kwargs)
        self.groups = check_positive_int(groups, "groups")

    def build(self, input_shape: Shape) -> None:
        if input_shape[-1] % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {input_shape[-1]} channels of layer {self.name!r}")
        self._build_affine((input_shape[-1],))

    def _normalize(self, x, gamma, beta):
        return ops.group_norm(x, self.groups, gamma, beta, eps=self.epsilon)

    def _gradients(self, dy, x, gamma, stats):
        return ops.group_norm_backward(dy, x, self.groups, gamma, stats.mean, stats.inv_std)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups}


@register_layer
class InstanceNormalization(_SampleNorm):
    """Instance normalization: per sample and channel, statistics over the spatial axes. gamma, beta: (C,)."""

    def build(self, input_shape: Shape) -> None:
        self._build_affine((input_shape[-1],))

    def _normalize(self, x, gamma, beta):
        return ops.instance_norm(x, gamma, beta, eps=self.epsilon)

    def _gradients(self, dy, x, gamma, stats):
        return ops.instance_norm_backward(dy, x, gamma, stats.mean, stats.inv_std)


@register_layer
class LocalResponseNormalization(Layer):
    """AlexNet's cross-channel LRN (ops.local_response_norm, PyTorch's formula; alpha is divided by size).
    No parameters. AlexNet: size=5, alpha=1e-4, beta=0.75, k=2."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = check_positive_int(size, "size")
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def _options(self) -> dict:
        return dict(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)

    def flops(self, input_shape: Shape) -> int:
        return math.prod(input_shape) * (2 * self.size + 4)

    def forward(self, x, training=False):
        if training:
            self.save_for_backward(x)
        return ops.local_response_norm(x, **self._options())

    def backward(self, dy):
        (x,) = self.saved()
        return ops.local_response_norm_backward(dy, x, **self._options())

    def get_config(self) -> dict:
        return {**super().get_config(), **self._options()}
