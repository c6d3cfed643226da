"""One-file checkpoints: an uncompressed zip readable by np.load(path, allow_pickle=False).

Members:
    architecture.json        {"format": 1, "network": {"class_name": "Sequential"|"Model", "config": ...}}
                             (save_model only; registry names and configs: loading executes no code)
    weights/<name>.npy       every parameter and state array, by its stable name ('conv2d_1/kernel')
    optimizer.json           the scalars of optimizer.state_dict(), if an optimizer was given
    optimizer/<key>.npy      its arrays
    metadata.json            any JSON-ready dict the caller adds (the `convkit train` run state: epoch, history,
                             schedule and random-generator states, for resuming)

Writes are atomic: a temporary file in the target's directory, fsync, then os.replace; a failed write
(no space, no permission) raises OSError naming the target and leaves the previous file as it was.
Loading trusts nothing in the file (convkit._checkpoint_file): any malformed file raises CheckpointError, a
ValueError; the architecture's class names are looked up in the layer registry, never imported.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Optional

import numpy as np

from ._atomic_write import write_atomically
from ._checkpoint_file import CheckpointError, read_members

FORMAT_VERSION = 1
ARCHITECTURE = "architecture.json"
OPTIMIZER_SCALARS = "optimizer.json"
METADATA = "metadata.json"


def _write_array(archive: zipfile.ZipFile, member: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    archive.writestr(member, buffer.getvalue())


def _write(path, network, optimizer, with_architecture: bool, metadata: Optional[dict] = None) -> None:
    path = os.fspath(path)
    arrays = {f"weights/{p.name}.npy": p.value for p in network.parameters()}
    texts = {}
    if with_architecture:
        from .network import network_to_config
        texts[ARCHITECTURE] = json.dumps({"format": FORMAT_VERSION, "network": network_to_config(network)})
    if optimizer is not None:
        scalars = {}
        for key, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{key}.npy"] = value
            elif isinstance(value, (bool, int, float, np.integer, np.floating)):
                scalars[key] = value.item() if isinstance(value, np.generic) else value
            else:
                raise TypeError(f"optimizer.state_dict()[{key!r}] must be an ndarray, float or int, got {value!r}")
        texts[OPTIMIZER_SCALARS] = json.dumps(scalars)
    if metadata is not None:
        try:
            texts[METADATA] = json.dumps(metadata)
        except (TypeError, ValueError) as error:
            raise TypeError(f"metadata must be JSON-ready (dicts, lists, str, numbers), got {metadata!r}: {error}") \
                from None
    def write(file) -> None:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            for member, text in texts.items():
                archive.writestr(member, text)
            for member, array in arrays.items():
                _write_array(archive, member, array)

    write_atomically(path, write, "checkpoint")


class _Checkpoint:
    """The validated members of a checkpoint file (convkit._checkpoint_file.read_members)."""

    def __init__(self, path) -> None:
        self.path = os.fspath(path)
        self.members = read_members(self.path)

    def text(self, member: str) -> Optional[dict]:
        return self.members.get(member)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {name[len(prefix):-len(".npy")]: value for name, value in self.members.items()
                if name.startswith(prefix)}

    def restore_weights(self, network, by_name: bool) -> None:
        """by_name: match parameters by name (load_model); else by position (load_weights), checking shapes."""
        stored = self.arrays("weights/")
        params = network.parameters()
        if len(stored) != len(params):
            raise CheckpointError(f"{self.path}: holds {len(stored)} weight arrays, the model has {len(params)} "
                                  "parameters")
        values = [stored.get(p.name) for p in params] if by_name else list(stored.values())
        for param, value in zip(params, values):
            if value is None:
                raise CheckpointError(f"{self.path}: no weights for parameter {param.name!r}")
            if value.shape != param.shape or value.dtype.kind != "f":
                raise CheckpointError(f"{self.path}: weights of shape {value.shape} and dtype {value.dtype} for "
                                      f"parameter {param.name!r} of shape {param.shape}")
        for param, value in zip(params, values):
            param.assign(value)

    def restore_optimizer(self, optimizer) -> None:
        scalars = self.text(OPTIMIZER_SCALARS)
        if scalars is None:
            raise CheckpointError(f"{self.path}: holds no optimizer state")
        try:
            optimizer.load_state_dict({**scalars, **self.arrays("optimizer/")})
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{self.path}: optimizer state does not fit the optimizer: {error}") from None

    def _check_declared_weight(self, name: str, shape: tuple) -> None:
        """Every weight the architecture declares must be stored in the file with that shape: checked as the
        model is built, before the weight is allocated (the file's arrays bound what a forged file costs)."""
        stored = self.members.get(f"weights/{name}.npy")
        if not isinstance(stored, np.ndarray):
            raise CheckpointError(f"{self.path}: the architecture declares parameter {name!r} of shape {shape}, "
                                  "which the file does not store")
        if stored.shape != shape:
            raise CheckpointError(f"{self.path}: the architecture declares parameter {name!r} of shape {shape}, "
                                  f"the file stores shape {stored.shape}")

    def build_network(self):
        """The network described by architecture.json: every class name checked against the registry first."""
        from .layers.base import checking_declared_weights
        from .network import NETWORKS, network_from_config
        from .registry import registered_layers

        architecture = self.text(ARCHITECTURE)
        if architecture is None:
            raise CheckpointError(f"{self.path}: holds weights only (save_weights); use model.load_weights")
        if architecture.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"{self.path}: unsupported format {architecture.get('format')!r}")
        network = architecture.get("network")
        config = network.get("config") if isinstance(network, dict) else None
        layers = config.get("layers") if isinstance(config, dict) else None
        if (not isinstance(network, dict) or network.get("class_name") not in NETWORKS
                or not isinstance(layers, list) or not all(isinstance(entry, dict) for entry in layers)):
            raise CheckpointError(f"{self.path}: malformed architecture: the network must be one of "
                                  f"{sorted(NETWORKS)} with a list of layers")
        known = set(registered_layers())
        unknown = sorted({repr(entry.get("class_name")) for entry in layers
                          if not isinstance(entry.get("class_name"), str) or entry["class_name"] not in known})
        if unknown:
            raise CheckpointError(f"{self.path}: unknown layer classes {', '.join(unknown)} (register them with "
                                  f"convkit.registry.register_layer before loading); known: {', '.join(sorted(known))}")
        try:
            with checking_declared_weights(self._check_declared_weight):
                return network_from_config(network)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError,
                MemoryError) as error:
            raise CheckpointError(f"{self.path}: malformed architecture: {type(error).__name__}: {error}") from None


def save_model(network, path, optimizer=None, metadata: Optional[dict] = None) -> None:
    """Architecture, weights and state, optimizer.state_dict() and a JSON-ready metadata dict when given, in one
    file at path."""
    _write(path, network, optimizer, with_architecture=True, metadata=metadata)


def load_model(path, optimizer=None):
    """The network saved at path, rebuilt from its architecture and restored; calls
    optimizer.load_state_dict(...) with the saved optimizer state when an optimizer is given."""
    checkpoint = _Checkpoint(path)
    network = checkpoint.build_network()
    checkpoint.restore_weights(network, by_name=True)
    if optimizer is not None:
        checkpoint.restore_optimizer(optimizer)
    return network


def save_weights(network, path) -> None:
    """Every parameter and state array (no architecture) in one file at path."""
    _write(path, network, None, with_architecture=False)


def load_weights(network, path) -> None:
    """Assign the arrays of a save_weights / save file to network.parameters(), in order, shapes checked
    (names may differ: the same architecture built twice in one process gets new layer names)."""
    _Checkpoint(path).restore_weights(network, by_name=False)


def read_metadata(path) -> dict:
    """The metadata dict saved with save_model(..., metadata=...), or {} when there is none."""
    return _Checkpoint(path).text(METADATA) or {}


def load_optimizer_state(path, optimizer) -> None:
    """Restore the optimizer state saved at path into `optimizer`, already bound to the loaded model's
    parameters (load_model first, then compile or bind the optimizer, then this)."""
    _Checkpoint(path).restore_optimizer(optimizer)
