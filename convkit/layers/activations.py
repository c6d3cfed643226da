"""The activation hook of layers that take `activation=` (Dense, the convolutions).

An activation is looked up by name. One that the conv/gemm epilogue can fuse ('relu', 'leaky_relu') runs
inside the op; any other registered one runs after it. Activations registered here:

    relu, leaky_relu (negative slope 0.01, the ops' default)

When convkit.ops gains more activations, each becomes usable in every layer by one register_activation call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

LEAKY_RELU_SLOPE = 0.01


@dataclass(frozen=True)
class ActivationFunction:
    """forward(z) -> y; backward(dy, z, y) -> dz. z is None when the activation was fused into the op,
    so a fused activation's backward must need y only."""

    name: str
    fused: Optional[str]  # the name ops.conv / ops.gemm take as activation=, or None
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, Optional[np.ndarray], np.ndarray], np.ndarray]


_activations: dict[str, ActivationFunction] = {}


def register_activation(activation: ActivationFunction) -> None:
    if activation.name in _activations:
        raise ValueError(f"activation {activation.name!r} is already registered")
    _activations[activation.name] = activation


def get_activation(name: Optional[str]) -> Optional[ActivationFunction]:
    """None for None / 'linear' (identity); ValueError naming the known activations otherwise."""
    if name is None or name == "linear":
        return None
    if name not in _activations:
        raise ValueError(f"activation must be None, 'linear' or one of {sorted(_activations)}, got {name!r}")
    return _activations[name]


def epilogue(activation: Optional[ActivationFunction]) -> Optional[str]:
    """What to pass to an op's activation= argument."""
    return activation.fused if activation is not None else None


def finish(activation: Optional[ActivationFunction], out: np.ndarray,
           fused: bool = True) -> tuple[Optional[np.ndarray], np.ndarray]:
    """(z, y) from the op's output. fused: the op was given epilogue(activation) (ops that cannot fuse, such
    as conv_transpose, pass False). y = out when the activation ran in the op (z not kept), else act(out)."""
    if activation is None or (fused and activation.fused is not None):
        return None, out
    return out, activation.forward(out)


def gradient(activation: Optional[ActivationFunction], dy: np.ndarray, z: Optional[np.ndarray],
             y: np.ndarray) -> np.ndarray:
    """The gradient with respect to the op's output (before the activation)."""
    return dy if activation is None else activation.backward(dy, z, y)


register_activation(ActivationFunction(
    "relu", "relu", lambda z: np.maximum(z, 0), lambda dy, z, y: dy * (y > 0)))
register_activation(ActivationFunction(
    "leaky_relu", "leaky_relu", lambda z: np.where(z > 0, z, LEAKY_RELU_SLOPE * z),
    lambda dy, z, y: dy * np.where(y > 0, 1.0, LEAKY_RELU_SLOPE).astype(dy.dtype)))
