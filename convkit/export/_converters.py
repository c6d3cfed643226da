"""One converter per layer class, in a table keyed by the layer's registry name (plugins add their own).

A converter is converter(layer, x, graph) -> Tensor: x is the input Tensor (a list of them for layers with
several inputs), graph the GraphBuilder; it adds the nodes computing the layer's inference output and returns
the output Tensor (its ONNX name, convkit's shape, the layout of its value).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from ..conv_spec import conv_spec, conv_transpose_spec
from ..ops._composite import _axis_options
from ..pool_spec import pool_spec
from ._graph import CHANNELS_FIRST, CHANNELS_LAST, GraphBuilder, Tensor

Converter = Callable[..., Tensor]
_converters: dict[str, Converter] = {}


def register_converter(*layer_names: str) -> Callable[[Converter], Converter]:
    """Decorator: use the function to export layers registered under these names (replacing any earlier one).

        @register_converter("ChannelScale")
        def channel_scale(layer, x, graph):
            gamma = graph.channel_vector(layer.s.value, x, f"{layer.name}_s")
            return Tensor(graph.node("Mul", [x.name, gamma], layer.name), x.shape, x.layout)
    """
    if not layer_names or not all(isinstance(n, str) and n for n in layer_names):
        raise TypeError(f"register_converter takes one or more layer names, got {layer_names!r}")

    def register(function: Converter) -> Converter:
        for name in layer_names:
            _converters[name] = function
        return function

    return register


def converter_for(layer) -> Converter:
    """The converter of the layer's class; NotImplementedError naming the class when there is none."""
    function = _converters.get(type(layer).registry_name)
    if function is None:
        raise NotImplementedError(
            f"no ONNX converter for layer {layer.name!r} of class {type(layer).__qualname__} (registered as "
            f"{type(layer).registry_name!r}); add one with convkit.export.register_converter")
    return function


def registered_converters() -> list[str]:
    return sorted(_converters)


def _out(layer, x: Tensor, name: str) -> Tensor:
    """The layer's output: ONNX value `name`, in x's layout."""
    return Tensor(name, tuple(layer.compute_output_shape(x.shape)), x.layout)


# ---- activations, by the names of convkit.layers.activations / ops.ACTIVATIONS ------------------------------

_SQRT_HALF = math.sqrt(0.5)
_GELU_TANH = math.sqrt(2 / math.pi)


def _gelu(g: GraphBuilder, x: str, hint: str, approximate: str = "none") -> str:
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh form (ONNX's Gelu operator needs opset 20)."""
    if approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x], f"{hint}_sq"), x], f"{hint}_cube")
        inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715, f"{hint}_c")], f"{hint}_c3")],
                       f"{hint}_inner")
        curve = g.node("Tanh", [g.node("Mul", [inner, g.scalar(_GELU_TANH, f"{hint}_k")], f"{hint}_scaled")],
                       f"{hint}_tanh")
    else:
        curve = g.node("Erf", [g.node("Mul", [x, g.scalar(_SQRT_HALF, f"{hint}_k")], f"{hint}_scaled")], f"{hint}_erf")
    one_plus = g.node("Add", [curve, g.scalar(1.0, f"{hint}_one")], f"{hint}_1p")
    return g.node("Mul", [g.node("Mul", [x, g.scalar(0.5, f"{hint}_half")], f"{hint}_half"), one_plus], hint)


def _clip(g: GraphBuilder, x: str, low: float, high: float, hint: str) -> str:
    return g.node("Clip", [x, g.scalar(low, f"{hint}_min"), g.scalar(high, f"{hint}_max")], hint)


def activation(g: GraphBuilder, x: Tensor, name: Optional[str], hint: str, **params) -> Tensor:
    """The activation `name` (None / 'linear': none) of x with its parameters (ops.activation's)."""
    if name is None or name == "linear":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hard_swish": "HardSwish"}
    if name in simple:
        y = g.node(simple[name], [x.name], hint)
    elif name == "relu6":
        y = _clip(g, x.name, 0.0, 6.0, hint)
    elif name == "leaky_relu":
        y = g.node("LeakyRelu", [x.name], hint, alpha=float(params.get("alpha", 0.01)))
    elif name == "elu":
        y = g.node("Elu", [x.name], hint, alpha=float(params.get("alpha", 1.0)))
    elif name == "gelu":
        y = _gelu(g, x.name, hint, params.get("approximate", "none"))
    elif name in ("softmax", "log_softmax"):
        op = "Softmax" if name == "softmax" else "LogSoftmax"
        y = g.node(op, [x.name], hint, axis=g.axis(x, params.get("axis", -1)))
    elif name == "hard_sigmoid":
        y = g.node("HardSigmoid", [x.name], hint, alpha=1 / 6, beta=0.5)
    else:
        raise NotImplementedError(f"no ONNX form for activation {name!r} (at {hint!r})")
    return Tensor(y, x.shape, x.layout)


def _layer_activation(g: GraphBuilder, layer, y: Tensor) -> Tensor:
    """The activation= of a Dense or convolution layer, with the ops' default parameters."""
    name = None if layer.activation is None else layer.activation.name
    return activation(g, y, name, f"{layer.name}_{name}")


@register_converter("Activation")
def _activation_layer(layer, x, g):
    return activation(g, x, layer.activation, layer.name, **layer.params)


@register_converter("ReLU")
def _relu(layer, x, g):
    if layer.max_value is not None:
        return Tensor(_clip(g, x.name, 0.0, layer.max_value, layer.name), x.shape, x.layout)
    if layer.negative_slope:
        return activation(g, x, "leaky_relu", layer.name, alpha=layer.negative_slope)
    return activation(g, x, "relu", layer.name)


@register_converter("LeakyReLU")
def _leaky_relu(layer, x, g):
    return activation(g, x, "leaky_relu", layer.name, alpha=layer.alpha)


@register_converter("ELU")
def _elu(layer, x, g):
    return activation(g, x, "elu", layer.name, alpha=layer.alpha)


@register_converter("Softmax")
def _softmax(layer, x, g):
    return activation(g, x, "softmax", layer.name, axis=layer.axis)


@register_converter("PReLU")
def _prelu(layer, x, g):
    slope = g.channel_vector(layer.alpha.value, x, f"{layer.name}_alpha")
    return Tensor(g.node("PRelu", [x.name, slope], layer.name), x.shape, x.layout)


@register_converter("Maxout")
def _maxout(layer, x, g):
    """Channels-last: (..., C) -> (..., C / k, k), the maximum over the last axis."""
    x = g.in_layout(x, CHANNELS_LAST)
    grouped = g.reshape(x.name, [*x.shape[:-1], x.shape[-1] // layer.k, layer.k], f"{layer.name}_pieces")
    return _out(layer, x, g.reduce("ReduceMax", grouped, [-1], False, layer.name))


# ---- Dense, Flatten, Reshape: convkit's channels-last order ------------------------------------------------

@register_converter("Dense")
def _dense(layer, x, g):
    x = g.in_layout(x, CHANNELS_LAST)
    kernel = g.constant(layer.kernel.value, f"{layer.name}_kernel")
    bias = None if layer.bias is None else g.constant(layer.bias.value, f"{layer.name}_bias")
    if x.rank == 2:
        y = g.node("Gemm", [x.name, kernel, *([bias] if bias else [])], layer.name)
    else:
        y = g.node("MatMul", [x.name, kernel], f"{layer.name}_matmul")
        y = g.node("Add", [y, bias], layer.name) if bias else y
    return _layer_activation(g, layer, _out(layer, x, y))


@register_converter("Flatten")
def _flatten(layer, x, g):
    """Flattened in convkit's (*spatial, C) order, so that the Dense after it reads its kernel's rows."""
    x = g.in_layout(x, CHANNELS_LAST)
    return _out(layer, x, g.node("Flatten", [x.name], layer.name, axis=1))


@register_converter("Reshape")
def _reshape(layer, x, g):
    x = g.in_layout(x, CHANNELS_LAST)
    return _out(layer, x, g.reshape(x.name, layer.compute_output_shape(x.shape), layer.name))


# ---- convolutions -------------------------------------------------------------------------------------------

def _conv_step(g: GraphBuilder, x: Tensor, kernel: np.ndarray, bias, options: dict, groups: int, hint: str) -> Tensor:
    """One convolution of channels-first x with a Keras-layout kernel and the layers' options."""
    spec = conv_spec((1, *x.shape), kernel.shape, groups=groups, **options)
    return Tensor(g.conv(x, kernel, bias, spec, hint), (*spec.out_spatial, spec.out_channels), CHANNELS_FIRST)


def _conv_options(layer) -> dict:
    return dict(stride=layer.strides, padding=layer.padding, dilation=layer.dilation_rate,
                padding_mode=layer.padding_mode)


def _bias(layer) -> Optional[np.ndarray]:
    return None if layer.bias is None else layer.bias.value


@register_converter("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D")
def _plain_conv(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    y = _conv_step(g, x, layer.kernel.value, _bias(layer), _conv_options(layer), layer.groups, layer.name)
    return _layer_activation(g, layer, y)


@register_converter("SeparableConv1D", "SeparableConv2D")
def _separable_conv(layer, x, g):
    """The depthwise step (stride, padding, dilation) then the 1x1 pointwise step with the bias."""
    x = g.in_layout(x, CHANNELS_FIRST)
    y = _conv_step(g, x, layer.depthwise_kernel.value, None, _conv_options(layer), x.shape[-1],
                   f"{layer.name}_depthwise")
    y = _conv_step(g, y, layer.pointwise_kernel.value, _bias(layer), {}, 1, layer.name)
    return _layer_activation(g, layer, y)


@register_converter("SpatiallySeparableConv2D")
def _spatially_separable_conv(layer, x, g):
    """The kh x 1 step then the 1 x kw one, each with the options of its axis (as ops.spatially_separable_conv2d)."""
    x = g.in_layout(x, CHANNELS_FIRST)
    options = _conv_options(layer)
    steps = [(layer.kernel_rows.value, None, "rows"), (layer.kernel_cols.value, _bias(layer), None)]
    y = x
    for axis, (kernel, bias, suffix) in enumerate(steps):
        step_options = _axis_options(axis, options["stride"], options["padding"], options["dilation"],
                                     options["padding_mode"])
        y = _conv_step(g, y, kernel, bias, step_options, 1, f"{layer.name}_{suffix}" if suffix else layer.name)
    return _layer_activation(g, layer, y)


@register_converter("Conv2DTranspose")
def _conv_transpose(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    kernel = layer.kernel.value
    spec = conv_transpose_spec((1, *x.shape), kernel.shape, stride=layer.strides, padding=layer.padding,
                               output_padding=layer.output_padding, dilation=layer.dilation_rate, groups=layer.groups)
    y = g.conv(x, kernel, _bias(layer), spec, layer.name, transposed=True)
    return _layer_activation(g, layer, _out(layer, x, y))


# ---- pooling -------------------------------------------------------------------------------------------------

@register_converter("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
                    "AveragePooling3D")
def _pooling(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    spec = pool_spec((1, *x.shape), layer.pool_size, stride=layer.strides, padding=layer.padding)
    options = dict(kernel_shape=list(spec.pool_size), strides=list(spec.stride),
                   pads=[*spec.pad_before, *spec.pad_after])
    if layer.kind == "max":
        y = g.node("MaxPool", [x.name], layer.name, **options)
    else:  # padding excluded from the averages, as the layers do
        y = g.node("AveragePool", [x.name], layer.name, count_include_pad=0, **options)
    return _out(layer, x, y)


@register_converter("GlobalMaxPooling", "GlobalAveragePooling")
def _global_pooling(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
    y = g.node(op, [x.name], f"{layer.name}_keepdims" if not layer.keepdims else layer.name)
    if not layer.keepdims:
        y = g.node("Flatten", [y], layer.name, axis=1)
    return _out(layer, x, y)


@register_converter("AdaptiveAveragePooling", "AdaptiveMaxPooling")
def _adaptive_pooling(layer, x, g):
    """PyTorch's bins [floor(i n / m), ceil((i + 1) n / m)), one axis at a time (a box's mean or maximum is the
    mean or maximum along one axis of those along the others): a Slice and a reduction per bin, concatenated."""
    x = g.in_layout(x, CHANNELS_FIRST)
    out_shape = layer.compute_output_shape(x.shape)
    op = "ReduceMax" if layer.kind == "max" else "ReduceMean"
    y = x.name
    for axis, n, m in zip(x.spatial_axes(), x.shape[:-1], out_shape[:-1]):
        if n == m:
            continue
        bins = [g.reduce(op, g.slice(y, axis, i * n // m, -(-((i + 1) * n) // m), f"{layer.name}_bin"), [axis], True,
                         f"{layer.name}_pooled") for i in range(m)]
        y = g.node("Concat", bins, f"{layer.name}_axis{axis}", axis=axis) if m > 1 else bins[0]
    return _out(layer, x, g.node("Identity", [y], layer.name))


# ---- normalization -------------------------------------------------------------------------------------------

def _affine(layer, shape) -> tuple[np.ndarray, np.ndarray]:
    """gamma and beta, ones and zeros when the layer has none (scale=False / center=False)."""
    gamma = np.ones(shape) if layer.gamma is None else layer.gamma.value
    beta = np.zeros(shape) if layer.beta is None else layer.beta.value
    return gamma, beta


@register_converter("BatchNormalization", "SyncBatchNormalization")  # the same layer at inference
def _batch_norm(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    gamma, beta = _affine(layer, x.shape[-1:])
    inputs = [x.name, *(g.constant(v, f"{layer.name}_{what}") for what, v in (
        ("gamma", gamma), ("beta", beta), ("mean", layer.moving_mean.value), ("var", layer.moving_variance.value)))]
    return _out(layer, x, g.node("BatchNormalization", inputs, layer.name, epsilon=layer.epsilon))


@register_converter("LayerNormalization")
def _layer_norm(layer, x, g):
    """Over the trailing axes of convkit's layout: ONNX LayerNormalization on the channels-last value."""
    x = g.in_layout(x, CHANNELS_LAST)
    normalized = x.shape[len(x.shape) - layer._normalized_ndim(x.shape):]
    gamma, beta = _affine(layer, normalized)
    inputs = [x.name, g.constant(gamma, f"{layer.name}_gamma"), g.constant(beta, f"{layer.name}_beta")]
    return _out(layer, x, g.node("LayerNormalization", inputs, layer.name, axis=-len(normalized),
                                 epsilon=layer.epsilon))


def _scale_shift(layer, g: GraphBuilder, y: Tensor) -> Tensor:
    """y * gamma + beta per channel (skipped where the layer has none)."""
    name = y.name
    if layer.gamma is not None:
        gamma = g.channel_vector(layer.gamma.value, y, f"{layer.name}_gamma")
        name = g.node("Mul", [name, gamma], f"{layer.name}_scaled" if layer.beta is not None else layer.name)
    if layer.beta is not None:
        name = g.node("Add", [name, g.channel_vector(layer.beta.value, y, f"{layer.name}_beta")], layer.name)
    return Tensor(name, y.shape, y.layout)


@register_converter("InstanceNormalization")
def _instance_norm(layer, x, g):
    x = g.in_layout(x, CHANNELS_FIRST)
    gamma, beta = _affine(layer, x.shape[-1:])
    inputs = [x.name, g.constant(gamma, f"{layer.name}_gamma"), g.constant(beta, f"{layer.name}_beta")]
    return _out(layer, x, g.node("InstanceNormalization", inputs, layer.name, epsilon=layer.epsilon))


@register_converter("GroupNormalization")
def _group_norm(layer, x, g):
    """(N, C, *spatial) -> (N, groups, rest), InstanceNormalization over `rest` per (sample, group), back, then the
    per-channel scale and shift (opset 17 has no GroupNormalization; 18's takes per-group scales)."""
    x = g.in_layout(x, CHANNELS_FIRST)
    groups = layer.groups
    grouped = g.reshape(x.name, [groups, -1], f"{layer.name}_grouped")
    ones, zeros = g.constant(np.ones(groups), f"{layer.name}_ones"), g.constant(np.zeros(groups), f"{layer.name}_zeros")
    normalized = g.node("InstanceNormalization", [grouped, ones, zeros], f"{layer.name}_normalized",
                        epsilon=layer.epsilon)
    y = Tensor(g.reshape(normalized, x.onnx_shape, f"{layer.name}_ungrouped"), x.shape, CHANNELS_FIRST)
    return _scale_shift(layer, g, y)


@register_converter("LocalResponseNormalization")
def _lrn(layer, x, g):
    """ONNX's LRN for odd sizes (the same window as convkit's, PyTorch's). onnxruntime refuses even sizes, whose
    windows differ too (ONNX sums channels [c - (size - 1) // 2, c + size // 2], convkit [c - size // 2,
    c + (size - 1) // 2]): there the window sum of squares is a convolution of ones along the channel axis."""
    x = g.in_layout(x, CHANNELS_FIRST)
    name = layer.name
    if layer.size % 2:
        return _out(layer, x, g.node("LRN", [x.name], name, size=layer.size, alpha=layer.alpha, beta=layer.beta,
                                     bias=layer.k))
    squares = g.reshape(g.node("Mul", [x.name, x.name], f"{name}_squares"), [1, x.shape[-1], -1], f"{name}_rows")
    window = g.constant(np.ones((1, 1, layer.size, 1)), f"{name}_window")
    sums = g.node("Conv", [squares, window], f"{name}_sums", kernel_shape=[layer.size, 1],
                  pads=[layer.size // 2, 0, (layer.size - 1) // 2, 0])
    sums = g.reshape(sums, x.onnx_shape, f"{name}_window_sums")
    scaled = g.node("Mul", [sums, g.scalar(layer.alpha / layer.size, f"{name}_alpha")], f"{name}_scaled")
    base = g.node("Add", [scaled, g.scalar(layer.k, f"{name}_k")], f"{name}_base")
    denominator = g.node("Pow", [base, g.scalar(layer.beta, f"{name}_beta")], f"{name}_denominator")
    return _out(layer, x, g.node("Div", [x.name, denominator], name))


# ---- merges, padding, scaling, regularisation ---------------------------------------------------------------

def _sum(xs: list[Tensor], g: GraphBuilder, op: str, name: str) -> Tensor:
    xs = g.same_layout(xs)
    y = xs[0].name
    for i, t in enumerate(xs[1:], start=2):
        y = g.node(op, [y, t.name], name if i == len(xs) else f"{name}_partial")
    return Tensor(y, xs[0].shape, xs[0].layout)


@register_converter("Add", "StochasticDepth")  # StochasticDepth at inference: shortcut + branch
def _add(layer, xs, g):
    return _sum(xs, g, "Add", layer.name)


@register_converter("Multiply")
def _multiply(layer, xs, g):
    return _sum(xs, g, "Mul", layer.name)


@register_converter("Concatenate")
def _concatenate(layer, xs, g):
    xs = g.same_layout(xs)
    y = g.node("Concat", [t.name for t in xs], layer.name, axis=g.axis(xs[0], layer.axis))
    return Tensor(y, tuple(layer.compute_output_shape([t.shape for t in xs])), xs[0].layout)


@register_converter("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def _zero_padding(layer, x, g):
    before, after = zip(*layer.padding)
    return _out(layer, x, g.pad(x, before, after, "zeros", layer.name))


@register_converter("LayerScale")
def _layer_scale(layer, x, g):
    gamma = g.channel_vector(layer.gamma.value, x, f"{layer.name}_gamma")
    return Tensor(g.node("Mul", [x.name, gamma], layer.name), x.shape, x.layout)


@register_converter("SqueezeExcite")
def _squeeze_excite(layer, x, g):
    """Global average pool (kept as (N, C, 1, ...)), the two Dense steps as 1x1 convolutions, then the gate."""
    x = g.in_layout(x, CHANNELS_FIRST)
    ones = (1,) * (x.rank - 2)
    squeezed = Tensor(g.node("GlobalAveragePool", [x.name], f"{layer.name}_squeeze"), (*ones, x.shape[-1]),
                      CHANNELS_FIRST)
    hidden = _conv_step(g, squeezed, layer.reduce_kernel.value.reshape(*ones, *layer.reduce_kernel.shape),
                        layer.reduce_bias.value, {}, 1, f"{layer.name}_reduce")
    hidden = activation(g, hidden, "relu", f"{layer.name}_relu")
    logits = _conv_step(g, hidden, layer.expand_kernel.value.reshape(*ones, *layer.expand_kernel.shape),
                        layer.expand_bias.value, {}, 1, f"{layer.name}_expand")
    gate = activation(g, logits, "sigmoid", f"{layer.name}_gate")
    return Tensor(g.node("Mul", [x.name, gate.name], layer.name), x.shape, CHANNELS_FIRST)


@register_converter("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
def _dropout(layer, x, g):
    """The identity at inference."""
    return x


@register_converter("DropConnect")
def _drop_connect(layer, x, g):
    """The wrapped layer with its plain kernels (inference)."""
    return converter_for(layer.layer)(layer.layer, x, g)
