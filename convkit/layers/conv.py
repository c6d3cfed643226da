"""Convolution layers: Conv1D/2D/3D, DepthwiseConv2D, SeparableConv1D/2D, SpatiallySeparableConv2D,
Conv2DTranspose. Channels-last: x (N, *spatial, C_in) -> (N, *out_spatial, filters); kernels in Keras layout
(*kernel_size, C_in // groups, filters). Options are checked by convkit.conv_spec when the layer is built.
"""
from __future__ import annotations

import math
from typing import Optional

from .. import initializers, ops
from ..conv_spec import PADDING_MODES, ConvSpec, conv_spec, conv_transpose_spec
from .._validate import check_positive_int
from ..registry import register_layer
from . import activations
from ._config import as_lists, as_tuples, per_axis
from .base import Layer, Shape


class _Conv(Layer):
    """Shared by every convolution layer: options, activation, bias, forward and backward. Subclasses set
    `rank`, create their kernels in build, and name them and their op (_kernels, _run, _gradients)."""

    rank = 2

    def __init__(self, filters: Optional[int], kernel_size, strides=1, padding="valid", padding_mode: str = "zeros",
                 dilation_rate=1, groups: int = 1, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_positive_int(filters, "filters")
        self.kernel_size = per_axis(kernel_size, self.rank, "kernel_size")
        self.strides = per_axis(strides, self.rank, "strides")
        self.dilation_rate = per_axis(dilation_rate, self.rank, "dilation_rate")
        self.padding = as_tuples(padding)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.groups = check_positive_int(groups, "groups")
        self.activation = activations.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def _options(self) -> dict:
        return dict(stride=self.strides, padding=self.padding, dilation=self.dilation_rate,
                    padding_mode=self.padding_mode)

    def _check_rank(self, input_shape: Shape) -> None:
        if len(input_shape) != self.rank + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (N, {self.rank} spatial axes, C), "
                             f"got input_shape {input_shape} (without the batch axis)")

    def _spec(self, input_shape: Shape) -> ConvSpec:
        """The options checked against an input shape; the spec of the whole (composite) convolution."""
        self._check_rank(input_shape)
        kernel = (*self.kernel_size, input_shape[-1] // self.groups, self.filters)
        return conv_spec((1, *input_shape), kernel, groups=self.groups, **self._options())

    def _build_bias(self) -> None:
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer, decay=False) if self.use_bias
                     else None)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*self._spec(input_shape).out_spatial, self.filters)

    def flops(self, input_shape: Shape) -> int:
        spec = self._spec(input_shape)
        outputs = math.prod(spec.out_spatial) * self.filters
        return outputs * (2 * math.prod(self.kernel_size) * (input_shape[-1] // self.groups) + self.use_bias)

    # The one forward/backward of every convolution layer; subclasses name their kernels and their op.
    fuses_activation = True  # the op takes relu / leaky_relu as its epilogue

    def _kernels(self) -> list:
        """The kernel Parameters, in the order the op takes them."""
        raise NotImplementedError

    def _run(self, x, kernels: list, bias, activation):
        """The op's output for kernel values and bias (None: no bias) and the epilogue activation name."""
        raise NotImplementedError

    def _gradients(self, dz, x, kernels: list, need: tuple) -> tuple:
        """(dx, *d_kernels, d_bias) of the op, entries not in `need` None."""
        raise NotImplementedError

    def forward(self, x, training=False):
        epilogue = activations.epilogue(self.activation) if self.fuses_activation else None
        out = self._run(x, [k.value for k in self._kernels()], None if self.bias is None else self.bias.value, epilogue)
        z, y = activations.finish(self.activation, out, fused=self.fuses_activation)
        if training:
            self.save_for_backward(x, z, y)
        return y

    def backward(self, dy):
        x, z, y = self.saved()
        dz = activations.gradient(self.activation, dy, z, y)
        need = (*(("x",) if self._input_gradient_wanted else ()), *(("w",) if self.trainable else ()),
                *(("b",) if self.trainable and self.use_bias else ()))
        kernels = self._kernels()
        dx, *d_kernels, db = self._gradients(dz, x, [k.value for k in kernels], need)
        for param, grad in zip((*kernels, self.bias), (*d_kernels, db)):
            if grad is not None:
                self.accumulate(param, grad)
        return dx

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": as_lists(self.padding), "padding_mode": self.padding_mode,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": None if self.activation is None else self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}


class _PlainConv(_Conv):
    """One convolution with a fused epilogue: ops.conv / ops.conv_backward."""

    kernel_name = "kernel"

    def build(self, input_shape: Shape) -> None:
        spec = self._spec(input_shape)
        self.kernel = self.add_weight(self.kernel_name, (*spec.kernel_size, spec.in_channels // spec.groups,
                                                         spec.out_channels), self.kernel_initializer)
        self._build_bias()

    def _kernels(self) -> list:
        return [self.kernel]

    def _run(self, x, kernels, bias, activation):
        return ops.conv(x, *kernels, bias, groups=self.groups, activation=activation, **self._options())

    def _gradients(self, dz, x, kernels, need):
        return ops.conv_backward(dz, x, *kernels, groups=self.groups, need=need, **self._options())


@register_layer
class Conv1D(_PlainConv):
    """1-D convolution: x (N, W, C_in) -> (N, W', filters); kernel (k, C_in // groups, filters).

    padding: 'valid', 'same', an int, or (before, after); padding_mode: zeros/reflect/replicate/circular;
    groups > 1: grouped convolution; activation: None/'relu'/'leaky_relu' fused (others applied after).
    """

    rank = 1


@register_layer
class Conv2D(_PlainConv):
    """2-D convolution: x (N, H, W, C_in) -> (N, H', W', filters); kernel (kh, kw, C_in // groups, filters).
    Options as Conv1D, per axis."""

    rank = 2


@register_layer
class Conv3D(_PlainConv):
    """3-D convolution: x (N, D, H, W, C_in) -> (N, D', H', W', filters). Options as Conv1D, per axis."""

    rank = 3


@register_layer
class DepthwiseConv2D(_PlainConv):
    """One kh x kw filter per input channel and depth_multiplier m: x (N, H, W, C) -> (N, H', W', C * m).

    depthwise_kernel (kh, kw, 1, C * m) (groups = C; output channel c * m + j reads input channel c).
    """

    rank = 2
    kernel_name = "depthwise_kernel"

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier: int = 1, padding_mode="zeros",
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs) -> None:
        super().__init__(None, kernel_size, strides, padding, padding_mode, dilation_rate, 1, activation, use_bias,
                         depthwise_initializer, bias_initializer, **kwargs)
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")

    @property
    def depthwise_kernel(self):
        return self.kernel

    def _spec(self, input_shape: Shape) -> ConvSpec:
        self._check_rank(input_shape)
        self.groups, self.filters = input_shape[-1], input_shape[-1] * self.depth_multiplier
        return super()._spec(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("filters", "groups"):
            del config[key]
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        return {**config, "depth_multiplier": self.depth_multiplier}


class _SeparableConv(_Conv):
    """Depthwise (kernel_size, depth_multiplier) then pointwise 1x1 to `filters`: ops.separable_conv."""

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", depth_multiplier: int = 1,
                 padding_mode="zeros", dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs) -> None:
        super().__init__(filters, kernel_size, strides, padding, padding_mode, dilation_rate, 1, activation, use_bias,
                         depthwise_initializer, bias_initializer, **kwargs)
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")
        self.pointwise_initializer = initializers.get(pointwise_initializer)

    def build(self, input_shape: Shape) -> None:
        self._spec(input_shape)
        middle = input_shape[-1] * self.depth_multiplier
        self.depthwise_kernel = self.add_weight("depthwise_kernel", (*self.kernel_size, 1, middle),
                                                self.kernel_initializer)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (*(1,) * self.rank, middle, self.filters),
                                                self.pointwise_initializer)
        self._build_bias()

    def flops(self, input_shape: Shape) -> int:
        out = self._spec(input_shape).out_spatial
        middle = input_shape[-1] * self.depth_multiplier
        per_pixel = 2 * middle * (math.prod(self.kernel_size) + self.filters) + self.use_bias * self.filters
        return math.prod(out) * per_pixel

    def _kernels(self) -> list:
        return [self.depthwise_kernel, self.pointwise_kernel]

    def _run(self, x, kernels, bias, activation):
        return ops.separable_conv(x, *kernels, bias, activation=activation, **self._options())

    def _gradients(self, dz, x, kernels, need):
        return ops.separable_conv_backward(dz, x, *kernels, need=need, **self._options())

    def get_config(self) -> dict:
        config = super().get_config()
        del config["groups"]
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        return {**config, "depth_multiplier": self.depth_multiplier,
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer)}


@register_layer
class SeparableConv1D(_SeparableConv):
    """Depthwise-separable 1-D convolution: x (N, W, C) -> (N, W', filters)."""

    rank = 1


@register_layer
class SeparableConv2D(_SeparableConv):
    """Depthwise-separable 2-D convolution (MobileNet, Xception): x (N, H, W, C) -> (N, H', W', filters).
    depthwise_kernel (kh, kw, 1, C * m), pointwise_kernel (1, 1, C * m, filters), bias (filters,)."""

    rank = 2


@register_layer
class SpatiallySeparableConv2D(_Conv):
    """A kh x 1 convolution to `intermediate_filters` (default: filters) then a 1 x kw one to `filters`
    (ops.spatially_separable_conv2d): kh + kw taps per pixel; same output size as the full kh x kw conv.
    kernel_rows (kh, 1, C_in, mid), kernel_cols (1, kw, mid, filters), bias (filters,)."""

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", padding_mode="zeros", dilation_rate=1,
                 intermediate_filters: Optional[int] = None, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs) -> None:
        super().__init__(filters, kernel_size, strides, padding, padding_mode, dilation_rate, 1, activation, use_bias,
                         kernel_initializer, bias_initializer, **kwargs)
        self.intermediate_filters = check_positive_int(intermediate_filters or self.filters, "intermediate_filters")

    def build(self, input_shape: Shape) -> None:
        self._spec(input_shape)
        (kh, kw), mid = self.kernel_size, self.intermediate_filters
        self.kernel_rows = self.add_weight("kernel_rows", (kh, 1, input_shape[-1], mid), self.kernel_initializer)
        self.kernel_cols = self.add_weight("kernel_cols", (1, kw, mid, self.filters), self.kernel_initializer)
        self._build_bias()

    def flops(self, input_shape: Shape) -> int:
        """Both steps counted at the output's resolution (the row step runs on more columns when the column
        stride is above 1: an estimate)."""
        (kh, kw), mid = self.kernel_size, self.intermediate_filters
        out = math.prod(self._spec(input_shape).out_spatial)
        return out * (2 * mid * (kh * input_shape[-1] + kw * self.filters) + self.use_bias * self.filters)

    def _kernels(self) -> list:
        return [self.kernel_rows, self.kernel_cols]

    def _run(self, x, kernels, bias, activation):
        return ops.spatially_separable_conv2d(x, *kernels, bias, activation=activation, **self._options())

    def _gradients(self, dz, x, kernels, need):
        return ops.spatially_separable_conv2d_backward(dz, x, *kernels, need=need, **self._options())

    def get_config(self) -> dict:
        config = super().get_config()
        del config["groups"]
        return {**config, "intermediate_filters": self.intermediate_filters}


@register_layer
class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution (upsampling): x (N, H, W, C_in) -> (N, H', W', filters) with
    H' = (H - 1) * stride - pad_before - pad_after + dilation * (k - 1) + output_padding + 1
    ('same': H * stride). kernel (kh, kw, filters // groups, C_in), Keras' layout. The activation is applied
    after the op (not fused)."""

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", output_padding=0, dilation_rate=1,
                 groups: int = 1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs) -> None:
        super().__init__(filters, kernel_size, strides, padding, "zeros", dilation_rate, groups, activation, use_bias,
                         kernel_initializer, bias_initializer, **kwargs)
        self.output_padding = per_axis(output_padding, self.rank, "output_padding", minimum=0)

    def _options(self) -> dict:
        return dict(stride=self.strides, padding=self.padding, output_padding=self.output_padding,
                    dilation=self.dilation_rate, groups=self.groups)

    def _spec(self, input_shape: Shape) -> ConvSpec:
        self._check_rank(input_shape)
        kernel = (*self.kernel_size, self.filters // self.groups, input_shape[-1])
        return conv_transpose_spec((1, *input_shape), kernel, **self._options())

    def build(self, input_shape: Shape) -> None:
        self._spec(input_shape)
        self.kernel = self.add_weight("kernel", (*self.kernel_size, self.filters // self.groups, input_shape[-1]),
                                      self.kernel_initializer)
        self._build_bias()

    def flops(self, input_shape: Shape) -> int:
        taps = math.prod(input_shape) * math.prod(self.kernel_size) * (self.filters // self.groups)
        return 2 * taps + self.use_bias * math.prod(self.compute_output_shape(input_shape))

    fuses_activation = False  # ops.conv_transpose has no epilogue

    def _kernels(self) -> list:
        return [self.kernel]

    def _run(self, x, kernels, bias, activation):
        return ops.conv_transpose(x, *kernels, bias, **self._options())

    def _gradients(self, dz, x, kernels, need):
        return ops.conv_transpose_backward(dz, x, *kernels, need=need, **self._options())

    def get_config(self) -> dict:
        config = super().get_config()
        del config["padding_mode"]
        return {**config, "output_padding": list(self.output_padding)}
