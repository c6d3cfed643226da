"""Keras 3 weights (.weights.h5, or the model.weights.h5 inside a .keras zip) into a convkit network.

Keras 3 stores each layer's variables under layers/<key>/vars/0, 1, ... where <key> is the snake-case class
name followed by _1, _2, ... in the order of the model's layers ('conv2d', 'conv2d_1', 'dense', ...); the
layer's own name is only an attribute. So the k-th convkit layer of a kind takes the k-th Keras layer of the
same kind, its variables in order (Keras' kernels are already convkit's layout), shapes checked.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Union

import numpy as np

from .._checkpoint_file import CheckpointError
from ..layers import DepthwiseConv2D, PReLU, SeparableConv1D, SeparableConv2D
from ..network import Network
from ._layouts import owners

WEIGHTS_MEMBER = "model.weights.h5"  # inside a .keras file
# Weights Keras stores in another shape of the same values: depthwise kernels (*k, C, m) for convkit's
# (*k, 1, C * m) (output channel c * m + j in both), PReLU's slopes (1, ..., C) for (C,).
RESHAPED = {DepthwiseConv2D: "depthwise_kernel", SeparableConv1D: "depthwise_kernel",
            SeparableConv2D: "depthwise_kernel", PReLU: "alpha"}


def _require_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError('reading Keras weights needs h5py: pip install "convkit[interop]"') from error
    return h5py


def keras_key(class_name: str) -> str:
    """Keras' snake case of a class name ('Conv2D' -> 'conv2d', 'PReLU' -> 'p_re_lu')."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_layers(file, path: str) -> dict[str, list[np.ndarray]]:
    """{layer key: its variables in order} of the layers that have any."""
    if "layers" not in file:
        raise CheckpointError(f"{path}: no 'layers' group: not a Keras 3 weights file")
    stored = {}
    for key, group in file["layers"].items():
        variables = group.get("vars")
        if variables is None or not len(variables):
            continue
        try:
            stored[key] = [np.asarray(variables[str(i)][()]) for i in range(len(variables))]
        except KeyError:
            raise CheckpointError(f"{path}: layer {key!r} has variables {sorted(variables)}, not "
                                  f"0..{len(variables) - 1}") from None
    return stored


def _open_weights(path: str):
    h5py = _require_h5py()
    if path.endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as archive:
                data = archive.read(WEIGHTS_MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise CheckpointError(f"{path}: not a .keras file with {WEIGHTS_MEMBER}: {error}") from None
        return h5py.File(io.BytesIO(data), "r")
    if path.endswith(".h5"):
        return h5py.File(path, "r")
    raise ValueError(f"path {path!r}: expected a .weights.h5 or .keras file")


def load_keras_weights(model: Network, path: Union[str, os.PathLike]) -> None:
    """Copy Keras 3 weights (.weights.h5 from model.save_weights, or a .keras file from model.save) into a
    built convkit network of the same architecture: layers matched in order within each kind (Conv2D,
    Dense, BatchNormalization, ...; a branched model must order its layers of a kind as the Keras one does),
    variables in order, shapes checked; every Keras layer with weights must
    find its convkit layer and the other way round, or ValueError lists what is left over. Nothing is
    assigned unless everything fits. Keras' BatchNormalization epsilon is 1e-3 (convkit's 1e-5): build the
    convkit layers with epsilon=1e-3 for the same outputs. Needs h5py."""
    if not isinstance(model, Network):
        raise TypeError(f"model must be a convkit Sequential or Model, got {model!r}")
    path = os.fspath(path)
    try:
        with _open_weights(path) as file:
            stored = _read_layers(file, path)
    except OSError as error:
        if not os.path.exists(path):
            raise
        raise CheckpointError(f"{path}: not a readable HDF5 file: {error}") from None
    counts: dict[str, int] = {}
    layers = owners(model)
    assignments, unmatched = [], []
    for layer in dict.fromkeys(layers[id(p)] for p in model.parameters()):
        kind = keras_key(type(layer).__name__)
        key = kind if counts.get(kind, 0) == 0 else f"{kind}_{counts[kind]}"
        counts[kind] = counts.get(kind, 0) + 1
        if key not in stored:
            unmatched.append(f"{layer.name} ({key})")
            continue
        variables, params = stored.pop(key), layer.parameters()
        if len(variables) != len(params):
            raise ValueError(f"Keras layer {key!r} holds {len(variables)} arrays {[v.shape for v in variables]}, "
                             f"convkit layer {layer.name!r} has {len(params)} {[p.shape for p in params]}")
        for param, value in zip(params, variables):
            weight = param.name.rsplit("/", 1)[1]
            if value.shape != param.shape and RESHAPED.get(type(layer)) == weight and value.size == param.size:
                value = value.reshape(param.shape)
            if value.shape != param.shape:
                raise ValueError(f"Keras layer {key!r} array of shape {value.shape} does not fit parameter "
                                 f"{param.name!r} of shape {param.shape}")
            assignments.append((param, value))
    if unmatched or stored:
        raise ValueError(f"{path} does not fit {model.name!r}: convkit layers without Keras weights {unmatched}, "
                         f"Keras layers left over {sorted(stored)}")
    for param, value in assignments:
        param.assign(value)
