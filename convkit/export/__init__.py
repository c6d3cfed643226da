"""Export to ONNX: a network's inference graph with its weights, in standard operators, for onnxruntime,
TensorRT, OpenVINO, a browser...

    convkit.export.to_onnx(model, "model.onnx", input_shape=(32, 32, 3))

The exported graph takes and returns convkit's channels-last arrays (N, *shape) with a dynamic batch axis
'N'; inside it runs channels-first, as ONNX's operators want (see _graph.py for how the layouts are tracked).
Each layer class is exported by the converter registered under its registry name (`register_converter`);
dropout layers export as the identity and BatchNormalization with its moving statistics (inference).
Needs the onnx package (pip install "convkit[onnx]").
"""
from __future__ import annotations

import numbers
import os
from typing import Sequence, Union

from .._atomic_write import write_atomically
from ..layers.base import check_shape
from ..network import InputLayer, Model, Network, Sequential
from ._converters import converter_for, register_converter, registered_converters
from ._graph import CHANNELS_LAST, GraphBuilder, Tensor, require_onnx

MIN_OPSET = 17  # LayerNormalization

Shape = Sequence[int]


def _check_opset(opset) -> int:
    onnx = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest} (the newest this onnx package knows), "
                         f"got {opset!r}")
    return int(opset)


def _input_shapes(model: Network, input_shape) -> list[tuple]:
    """The network's input shape(s) after checking input_shape against them (a Sequential not yet built is
    built for it)."""
    if not isinstance(model, Network):
        raise TypeError(f"model must be a convkit Sequential or Model, got {model!r}")
    several = isinstance(model, Model) and not model._single_input
    given = [check_shape(s, "input_shape") for s in input_shape] if several and isinstance(input_shape, (list, tuple)) \
        else [check_shape(input_shape, "input_shape")]
    if isinstance(model, Sequential):
        if not model.layers:
            raise ValueError(f"Sequential {model.name!r} has no layers")
        if not model.built and model._input_shape() is None:
            model._build(given[0])
        expected = [tuple(model._input_shape())]
    else:
        expected = [tuple(t.shape) for t in model.inputs]
    if given != expected:
        raise ValueError(f"input_shape {input_shape!r} does not match the model's input shape"
                         f"{'s' if len(expected) > 1 else ''} {expected if several else expected[0]}")
    return expected


def _convert(layer, inputs: list[Tensor], graph: GraphBuilder) -> Tensor:
    return converter_for(layer)(layer, inputs if layer.multi_input else inputs[0], graph)


def onnx_bytes(model: Network, input_shape: Union[Shape, list], *, opset: int = MIN_OPSET) -> bytes:
    """The serialized ONNX model that to_onnx writes (same arguments), checked by onnx.checker with shape
    inference: for onnxruntime.InferenceSession(bytes) or onnx.load_from_string."""
    onnx = require_onnx()
    opset = _check_opset(opset)
    shapes = _input_shapes(model, input_shape)
    graph = GraphBuilder(opset)
    if isinstance(model, Sequential):
        inputs = [Tensor(graph.unique("input"), shapes[0])]
        output_names = [graph.unique("output")]
        tensor = inputs[0]
        for layer in model.layers:
            tensor = _convert(layer, [tensor], graph)
        results = [tensor]
    else:
        values: dict[int, Tensor] = {}
        for t in model.inputs:
            values[id(t)] = Tensor(graph.unique(t.node.layer.name), tuple(t.shape))
        inputs = [values[id(t)] for t in model.inputs]
        output_names = [graph.unique(t.node.layer.name) for t in model.outputs]
        for node in model._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            values[id(node.output)] = _convert(node.layer, [values[id(t)] for t in node.inputs], graph)
        results = [values[id(t)] for t in model.outputs]
    outputs = []
    for result, name in zip(results, output_names):
        result = graph.in_layout(result, CHANNELS_LAST)
        # An Identity gives each output its own name, even when it is an input or another output.
        outputs.append(Tensor(graph.node("Identity", [result.name], name, output=name), result.shape))
    data = graph.model(inputs, outputs, model.name).SerializeToString()
    onnx.checker.check_model(data, full_check=True)
    return data


def to_onnx(model: Network, path: Union[str, os.PathLike], input_shape: Union[Shape, list], *,
            opset: int = MIN_OPSET) -> None:
    """Write the network's inference graph and weights to an ONNX file at path (replacing it, atomically: a
    failed write leaves any previous file as it was).

    input_shape: the input's shape without the batch axis, channels last, e.g. (224, 224, 3) (a list of them
    for a Model with several inputs); it must match the model's (a Sequential not yet built is built for it).
    The file's inputs are named after the Input layers ('input' for a Sequential), its outputs after the
    output layers ('output' for a Sequential); all are float32 (N, *shape) with N dynamic.
    opset: the ONNX operator set, 17 (the default) or newer.
    Raises NotImplementedError naming the layer class for a layer without a converter (register_converter).
    """
    data = onnx_bytes(model, input_shape, opset=opset)
    write_atomically(path, lambda file: file.write(data), "ONNX model")


__all__ = ["onnx_bytes", "register_converter", "registered_converters", "to_onnx", "Tensor", "GraphBuilder"]
