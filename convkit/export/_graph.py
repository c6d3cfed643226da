"""The ONNX graph being built while a network is exported, and the tensors flowing through it.

convkit's data are channels-last (N, *spatial, C); ONNX's spatial operators (Conv, pools, BatchNormalization,
LRN, InstanceNormalization) take channels-first (N, C, *spatial). Each exported tensor therefore records the
layout its ONNX value holds, and a converter asks for the layout its operator needs (`in_layout`): a Transpose
is inserted only where the layout changes, once per tensor. Spatial stacks stay channels-first from the first
convolution to the last; the last-axis layers (Dense, LayerNormalization, Flatten, Reshape, Maxout) run on
channels-last values, which is also how Flatten keeps convkit's (H, W, C) order for the Dense after it.

Converters only call the methods here; the onnx package is imported when a GraphBuilder is made, so plugins
can register converters without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

CHANNELS_LAST = "channels_last"
CHANNELS_FIRST = "channels_first"


def require_onnx():
    """The onnx module, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError('exporting to ONNX needs the onnx package: pip install "convkit[onnx]"') from error
    return onnx


@dataclass(frozen=True)
class Tensor:
    """A value of the exported graph: its ONNX name, its shape as convkit sees it (no batch axis, channels
    last) and the layout its ONNX value holds. Shapes with fewer than 2 axes, (N, C), have one layout."""

    name: str
    shape: tuple
    layout: str = CHANNELS_LAST

    def __post_init__(self) -> None:
        if len(self.shape) < 2 and self.layout != CHANNELS_LAST:
            object.__setattr__(self, "layout", CHANNELS_LAST)

    @property
    def rank(self) -> int:
        """Axes of the ONNX value, batch included."""
        return len(self.shape) + 1

    @property
    def onnx_shape(self) -> tuple:
        """The shape without the batch axis in the value's layout."""
        if self.layout == CHANNELS_FIRST:
            return (self.shape[-1], *self.shape[:-1])
        return tuple(self.shape)

    def spatial_axes(self) -> list[int]:
        """The ONNX axes of the spatial dimensions."""
        first = 2 if self.layout == CHANNELS_FIRST else 1
        return list(range(first, first + len(self.shape) - 1))

    def channel_axis(self) -> int:
        return 1 if self.layout == CHANNELS_FIRST else self.rank - 1


class GraphBuilder:
    """Nodes and initializers of one graph at one opset; float weights are stored as float32."""

    def __init__(self, opset: int) -> None:
        onnx = require_onnx()
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._taken: set[str] = set()
        self._transposed: dict[tuple[str, str], Tensor] = {}

    def unique(self, hint: str) -> str:
        name, count = hint, 1
        while name in self._taken:
            count += 1
            name = f"{hint}_{count}"
        self._taken.add(name)
        return name

    def constant(self, value, hint: str) -> str:
        """An initializer: float arrays as float32, integer ones as int64."""
        array = np.asarray(value)
        array = np.ascontiguousarray(array, dtype=np.int64 if array.dtype.kind in "iub" else np.float32)
        name = self.unique(hint)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def scalar(self, value: float, hint: str) -> str:
        """A float32 scalar initializer (broadcasts against any tensor)."""
        return self.constant(np.float32(value), hint)

    def node(self, op: str, inputs: Sequence[str], hint: str, *, output: Optional[str] = None, **attributes) -> str:
        """One node with one output named after hint (or `output`, a name taken earlier with unique());
        returns the output's name."""
        output = output or self.unique(hint)
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    # ---- layouts ---------------------------------------------------------------------------------------

    def in_layout(self, tensor: Tensor, layout: str) -> Tensor:
        """The tensor in `layout`, transposed once and remembered."""
        if tensor.rank < 3 or tensor.layout == layout:
            return tensor
        key = (tensor.name, layout)
        if key not in self._transposed:
            last = tensor.rank - 1
            perm = [0, last, *range(1, last)] if layout == CHANNELS_FIRST else [0, *range(2, last + 1), 1]
            name = self.node("Transpose", [tensor.name], f"{tensor.name}_{layout}", perm=perm)
            self._transposed[key] = Tensor(name, tensor.shape, layout)
        return self._transposed[key]

    def same_layout(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """Every tensor in the first one's layout (merges: Add, Concatenate, ...)."""
        return [self.in_layout(t, tensors[0].layout) for t in tensors]

    @staticmethod
    def axis(tensor: Tensor, axis: int) -> int:
        """The ONNX axis of convkit's axis `axis` (of (N, *shape), negative counts from the end)."""
        axis = axis % tensor.rank
        if tensor.layout == CHANNELS_FIRST and axis > 0:
            return 1 if axis == tensor.rank - 1 else axis + 1
        return axis

    def channel_vector(self, values: np.ndarray, tensor: Tensor, hint: str) -> str:
        """A per-channel constant (C,) or (1,) shaped to broadcast along the tensor's channel axis."""
        values = np.asarray(values).reshape(-1)
        if tensor.layout == CHANNELS_FIRST:
            values = values.reshape(-1, *(1,) * (tensor.rank - 2))
        return self.constant(values, hint)

    # ---- operators whose form depends on the opset, or that take several nodes -------------------------

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: bool, hint: str) -> str:
        """ReduceMean / ReduceMax over axes (an attribute before opset 18, an input since)."""
        if self.opset >= 18:
            return self.node(op, [x, self.constant(list(axes), f"{hint}_axes")], hint, keepdims=int(keepdims))
        return self.node(op, [x], hint, axes=list(axes), keepdims=int(keepdims))

    def slice(self, x: str, axis: int, start: int, stop: int, hint: str, step: int = 1) -> str:
        inputs = [x, *(self.constant([v], f"{hint}_{what}") for what, v in
                       (("starts", start), ("ends", stop), ("axes", axis), ("steps", step)))]
        return self.node("Slice", inputs, hint)

    def reshape(self, x: str, shape: Sequence[int], hint: str) -> str:
        """Reshape to (batch, *shape): 0 keeps the batch axis, which the graph leaves dynamic."""
        return self.node("Reshape", [x, self.constant([0, *shape], f"{hint}_shape")], hint)

    def pad(self, tensor: Tensor, before: Sequence[int], after: Sequence[int], mode: str, hint: str) -> str:
        """Pad the spatial axes (before/after per spatial axis, convkit's order) with zeros ('zeros'), mirror
        ('reflect', the edge not repeated), edge ('replicate') or wrap-around ('circular') values."""
        if not any(before) and not any(after):
            return tensor.name
        if mode == "circular":
            return self._wrap(tensor, before, after, hint)
        begins, ends = [0] * tensor.rank, [0] * tensor.rank
        for axis, b, a in zip(tensor.spatial_axes(), before, after):
            begins[axis], ends[axis] = b, a
        onnx_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
        return self.node("Pad", [tensor.name, self.constant(begins + ends, f"{hint}_pads")], hint, mode=onnx_mode)

    def _wrap(self, tensor: Tensor, before: Sequence[int], after: Sequence[int], hint: str) -> str:
        """Circular padding as slices of the far ends concatenated around the value, an axis at a time: valid at
        every opset from 17 (Pad's mode 'wrap' needs 19)."""
        x = tensor.name
        sizes = tensor.shape[:-1]
        for axis, n, b, a in zip(tensor.spatial_axes(), sizes, before, after):
            parts = ([self.slice(x, axis, n - b, n, f"{hint}_wrap_head")] if b else []) + [x] + (
                [self.slice(x, axis, 0, a, f"{hint}_wrap_tail")] if a else [])
            if len(parts) > 1:
                x = self.node("Concat", parts, f"{hint}_wrap", axis=axis)
        return x

    def conv(self, x: Tensor, kernel: np.ndarray, bias: Optional[np.ndarray], spec, hint: str,
             transposed: bool = False) -> str:
        """Conv (or ConvTranspose) of a channels-first tensor with a Keras-layout kernel and a ConvSpec:
        (*k, C_in / groups, C_out) and, transposed, (*k, C_out / groups, C_in) both become ONNX's
        (first, second, *k) by moving the two channel axes to the front."""
        rank = len(spec.kernel_size)
        weight = np.transpose(kernel, (rank + 1, rank, *range(rank)))
        inputs = [x.name, self.constant(weight, f"{hint}_weight")]
        if bias is not None:
            inputs.append(self.constant(bias, f"{hint}_bias"))
        options = dict(kernel_shape=list(spec.kernel_size), strides=list(spec.stride), dilations=list(spec.dilation),
                       group=spec.groups)
        if transposed:
            return self.node("ConvTranspose", inputs, hint, pads=[*spec.pad_before, *spec.pad_after],
                             output_padding=list(spec.output_padding), **options)
        if spec.padding_mode != "zeros":
            inputs[0] = self.pad(x, spec.pad_before, spec.pad_after, spec.padding_mode, f"{hint}_pad")
            pads = [0] * (2 * rank)
        else:
            pads = [*spec.pad_before, *spec.pad_after]
        return self.node("Conv", inputs, hint, pads=pads, **options)

    def model(self, inputs: Sequence[Tensor], outputs: Sequence[Tensor], name: str):
        """The ModelProto: inputs and outputs channels-last (convkit's layout) with a dynamic batch axis 'N'."""
        helper = self.helper
        float32 = require_onnx().TensorProto.FLOAT

        def info(t: Tensor):
            return helper.make_tensor_value_info(t.name, float32, ["N", *t.shape])

        graph = helper.make_graph(self.nodes, name, [info(t) for t in inputs], [info(t) for t in outputs],
                                  self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="convkit")
        model.ir_version = helper.find_min_ir_version_for(opsets)
        return model
