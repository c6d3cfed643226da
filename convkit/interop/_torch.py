"""PyTorch weights into a convkit network: a state dict, a .pt/.pth file (weights only) or a .safetensors file."""
from __future__ import annotations

import os
import pickle
from typing import Mapping, NamedTuple, Union

import numpy as np

from .._checkpoint_file import CheckpointError
from ..network import Network
from ._layouts import flattened_inputs, from_torch, owners
from ._safetensors import read_safetensors
from ._torchvision import torchvision_keys

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
IGNORED = ("num_batches_tracked",)  # BatchNorm's step counter: no convkit counterpart


class LoadResult(NamedTuple):
    """What a non-strict load left out: convkit parameters left as they were, state-dict keys not used."""

    missing_keys: list
    unexpected_keys: list


def _as_numpy(key: str, value) -> np.ndarray:
    """A tensor (any device, bfloat16 and half widened to float32) or array-like as a NumPy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point() and str(value.dtype) not in ("torch.float32", "torch.float64"):
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"state_dict[{key!r}] must be a tensor or numeric array, got {type(value).__name__} of "
                        f"dtype {array.dtype}")
    return array


def _read_torch_file(path: str) -> Mapping:
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"reading {path!r} needs PyTorch (pip install torch); .safetensors files need nothing "
                          "but NumPy") from error
    # weights_only: tensors and plain containers only; a file asking to run code is refused by torch.
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): it holds more than tensors and "
                              f"plain containers ({str(error).splitlines()[0]})") from None
    for wrapper in ("state_dict", "model"):  # checkpoints that wrap the state dict
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    return loaded


def read_state_dict(source) -> tuple[dict[str, np.ndarray], bool]:
    """({key: array}, whether the keys keep the modules' order) from a mapping of tensors/arrays or a
    .pt/.pth/.bin/.safetensors path; BatchNorm's num_batches_tracked left out. A safetensors file does not
    keep the order (its writer sorts the tensors)."""
    keeps_order = True
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".safetensors"):
            source, keeps_order = read_safetensors(path), False
        elif path.endswith(TORCH_SUFFIXES):
            source = _read_torch_file(path)
        else:
            raise ValueError(f"state_dict_or_path {path!r}: expected a .safetensors file or a PyTorch file "
                             f"({', '.join(TORCH_SUFFIXES)})")
    if not isinstance(source, Mapping):
        raise TypeError(f"state_dict_or_path must be a mapping of tensors or a path, got {type(source).__name__}")
    state = {str(key): _as_numpy(key, value) for key, value in source.items() if not str(key).endswith(IGNORED)}
    return state, keeps_order


def _pairs_by_name(model: Network, state: dict, keys: dict) -> tuple[list, list, list]:
    """(parameter, key) pairs of the parameters whose torchvision key the state holds, the rest, unused keys."""
    params = model.parameters()
    pairs = [(p, keys[p.name]) for p in params if keys.get(p.name) in state]
    used = {key for _, key in pairs}
    missing = [p for p in params if keys.get(p.name) not in state]
    return pairs, missing, [k for k in state if k not in used]


def _pairs_by_order(model: Network, state: dict) -> tuple[list, list, list]:
    params, keys = model.parameters(), list(state)
    pairs = list(zip(params, keys))
    return pairs, params[len(pairs):], keys[len(pairs):]


def load_torch_state_dict(model: Network, state_dict_or_path: Union[Mapping, str, os.PathLike], *,
                          strict: bool = True) -> LoadResult:
    """Copy PyTorch weights into a built convkit network, converting the layouts (see _layouts.from_torch):
    conv kernels OIHW -> HWIO (grouped, depthwise and transposed too), Linear (out, in) -> Dense (in, out)
    with PyTorch's (C, H, W) flattening reordered for a Dense after a Flatten, BatchNorm weight / bias /
    running_mean / running_var (num_batches_tracked ignored).

    state_dict_or_path: a mapping of tensors or arrays; a .pt/.pth/.bin file (torch.load with
    weights_only=True: never runs code from the file); or a .safetensors file (read with NumPy alone).
    Keys: for the zoo models torchvision publishes (resnet18..152, resnext50_32x4d, vgg11/16/19,
    densenet121, convnext_tiny: recognised by the model's name) torchvision's names, so its checkpoints
    load; for any other model the arrays are taken in order, one per parameter (model.parameters() order:
    each layer's weights, then its BatchNorm statistics, as PyTorch orders them).
    strict=True: missing or unexpected keys raise ValueError listing them; strict=False loads what matches
    and returns them (LoadResult). A shape that does not fit raises ValueError naming both sides. Nothing is
    assigned unless everything fits.
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a convkit Sequential or Model, got {model!r}")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    state, keeps_order = read_state_dict(state_dict_or_path)
    keys = torchvision_keys(model)
    by_name = bool(keys) and any(key in state for key in keys.values())
    if not by_name and not keeps_order:
        raise ValueError(f"{os.fspath(state_dict_or_path)!r}: a .safetensors file keeps no tensor order, and "
                         f"{model.name!r} is not a zoo model with torchvision's names: load the state dict (in "
                         "module order) with torch and pass it instead")
    pairs, missing, unexpected = _pairs_by_name(model, state, keys) if by_name else _pairs_by_order(model, state)
    if strict and (missing or unexpected):
        wanted = (f"{p.name} ({keys[p.name]})" if p.name in keys else p.name for p in missing)
        raise ValueError(f"the state dict does not fit {model.name!r} "
                         f"({'by torchvision names' if by_name else 'in order'}): missing keys for "
                         f"[{', '.join(wanted)}], unexpected keys {unexpected} (strict=False loads the rest)")
    layers, flattened = owners(model), flattened_inputs(model)
    values = []
    for param, key in pairs:
        layer = layers[id(param)]
        converted = from_torch(layer, param.name.rsplit("/", 1)[1], state[key], flattened.get(id(layer)))
        if converted.shape != param.shape:
            raise ValueError(f"state-dict key {key!r} of shape {tuple(state[key].shape)} (as convkit lays it out: "
                             f"{converted.shape}) does not fit parameter {param.name!r} of shape {param.shape}")
        values.append(converted)
    for (param, _), value in zip(pairs, values):
        param.assign(value)
    return LoadResult([p.name for p in missing], unexpected)
