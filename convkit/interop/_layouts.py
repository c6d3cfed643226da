"""Where weights from elsewhere go in a convkit network: the owner of each parameter, the Dense layers that
read a Flatten, and PyTorch's weight layouts turned into convkit's (Keras') ones."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..layers import DropConnect, Flatten, Layer, LayerNormalization, LayerScale, SqueezeExcite
from ..layers.conv import _Conv
from ..layers.core import Dense
from ..layers.dropout import _Random
from ..network import Model, Network


def _computing(layer: Layer) -> Layer:
    return layer.layer if isinstance(layer, DropConnect) else layer


def owners(model: Network) -> dict[int, Layer]:
    """id(parameter) -> the layer computing with it (a DropConnect's wrapped layer)."""
    return {id(p): _computing(layer) for layer in model.layers for p in layer.parameters()}


def flattened_inputs(model: Network) -> dict[int, tuple]:
    """id(Dense layer) -> the shape (*spatial, C) a Flatten turned into its input (through dropout layers),
    for the Dense layers (wrapped by DropConnect or not) that read a flattened feature map."""
    found = {}
    if isinstance(model, Model):
        for node in model._nodes:
            if not isinstance(node.layer, (Dense, DropConnect)) or not node.inputs:
                continue
            source = node.inputs[0].node
            while isinstance(source.layer, _Random) and source.inputs and not source.layer.multi_input:
                source = source.inputs[0].node
            if isinstance(source.layer, Flatten):
                found[id(_computing(node.layer))] = tuple(source.inputs[0].shape)
    else:
        shape = None
        for layer in model.layers:
            if isinstance(layer, (Dense, DropConnect)) and shape is not None:
                found[id(_computing(layer))] = shape
            if isinstance(layer, Flatten):
                shape = tuple(layer.built_input_shape)
            elif not isinstance(layer, _Random) or isinstance(layer, DropConnect):
                shape = None
    return {key: shape for key, shape in found.items() if len(shape) >= 2}


def from_torch(layer: Layer, weight: str, array: np.ndarray, flattened: Optional[tuple]) -> np.ndarray:
    """A PyTorch parameter in the layout of the layer's weight `weight` ('kernel', 'gamma', ...).

    Convolutions: (C_out, C_in / groups, *k) -> (*k, C_in / groups, C_out); a transposed convolution's
    (C_in, C_out / groups, *k) -> (*k, C_out / groups, C_in) is the same move. Linear (out, in) -> Dense
    (in, out); when the Dense reads a Flatten of (*spatial, C), PyTorch's flattened order (C, *spatial) is
    rearranged into convkit's. SE blocks' 1x1 convolutions or Linears -> (in, out); LayerScale's (C, 1, 1)
    -> (C,); a LayerNorm over (C, *spatial) -> (*spatial, C). Other arrays are taken as they are."""
    if isinstance(layer, _Conv) and weight.endswith(("kernel", "kernel_rows", "kernel_cols")) and array.ndim >= 3:
        return np.transpose(array, (*range(2, array.ndim), 1, 0))
    if isinstance(layer, Dense) and weight == "kernel" and array.ndim == 2:
        if flattened is not None and array.shape[1] == np.prod(flattened):
            *spatial, channels = flattened
            array = np.moveaxis(array.reshape(array.shape[0], channels, *spatial), 1, -1).reshape(array.shape[0], -1)
        return array.T
    if isinstance(layer, SqueezeExcite) and weight.endswith("kernel"):
        return array.reshape(array.shape[0], -1).T
    if isinstance(layer, LayerScale):
        return array.reshape(-1)
    if isinstance(layer, LayerNormalization) and array.ndim >= 2:
        return np.moveaxis(array, 0, -1)
    return array
