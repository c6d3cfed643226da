"""The activation hook of layers that take `activation=` (Dense, the convolutions).

An activation is looked up by name. One that the conv/gemm epilogue can fuse ('relu', 'leaky_relu') runs
inside the op; any other registered one runs after it, through convkit.ops. Registered here: every name of
ops.ACTIVATIONS ('linear' is the identity, None):

    relu, relu6, leaky_relu (negative slope 0.01, the ops' default), elu (alpha 1), sigmoid, tanh,
    gelu (exact), softmax, log_softmax (over the last axis, the channels), hard_sigmoid, hard_swish

An activation whose backward needs only its output y runs in place on the op's output (no second array is
kept); one whose backward needs its input (gelu, hard_sigmoid, hard_swish) keeps the op's output z too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import ops


@dataclass(frozen=True)
class ActivationFunction:
    """forward(z) -> y; backward(dy, z, y) -> dz. needs_input: the backward reads z. When it is False, z is
    None in the backward (the activation was fused into the op, or ran after it) and the forward may write
    y over z (the op's output, which nothing else holds)."""

    name: str
    fused: Optional[str]  # the name ops.conv / ops.gemm take as activation=, or None
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, Optional[np.ndarray], np.ndarray], np.ndarray]
    needs_input: bool = True


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


def registered_activations() -> list[str]:
    """Every name `activation=` takes besides None and 'linear', sorted."""
    return sorted(_activations)


def epilogue(activation: Optional[ActivationFunction]) -> Optional[str]:
    """What to pass to an op's activation= argument."""
    return activation.fused if activation is not None else None


def finish(activation: Optional[ActivationFunction], out: np.ndarray,
           fused: bool = True) -> tuple[Optional[np.ndarray], np.ndarray]:
    """(z, y) from the op's output. fused: the op was given epilogue(activation) (ops that cannot fuse, such
    as conv_transpose, pass False). y = out when the activation ran in the op, else the activation of out;
    z = out is kept only when the backward needs it."""
    if activation is None or (fused and activation.fused is not None):
        return None, out
    return (out if activation.needs_input else None), activation.forward(out)


def gradient(activation: Optional[ActivationFunction], dy: np.ndarray, z: Optional[np.ndarray],
             y: np.ndarray) -> np.ndarray:
    """The gradient with respect to the op's output (before the activation)."""
    return dy if activation is None else activation.backward(dy, z, y)


def _from_ops(name: str) -> ActivationFunction:
    """ops.activation(name) with its default parameters, in place when the backward needs y only; fused
    into the epilogue when the ops can."""
    needs_input = ops.ACTIVATION_BACKWARD_INPUT[name] == "x"
    return ActivationFunction(
        name, name if name in ("relu", "leaky_relu") else None,
        forward=lambda z: ops.activation(z, name, out=None if needs_input else z),
        backward=lambda dy, z, y: ops.activation_backward(dy, z if needs_input else y, name),
        needs_input=needs_input)


for _name in ops.ACTIVATIONS:
    if _name != "linear":
        register_activation(_from_ops(_name))
