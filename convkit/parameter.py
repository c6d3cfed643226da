"""The one object layers, optimizers, checkpoints and gradient checks all share: a trainable array."""
from __future__ import annotations

import numpy as np


class Parameter:
    """A named array a layer learns, and the gradient of the loss with respect to it.

    value: the weights, any shape, float32 or float64, C-contiguous and updated in place by optimizers
           (layers keep a reference to the same array, so an update is seen at once).
    grad:  same shape and dtype as value; a layer's backward writes (or accumulates into) it.
    trainable: False freezes the parameter (transfer learning): optimizers skip it and it stays bit-identical.
    decay: whether weight decay applies by default (True for kernels; False for biases and normalisation
           scales/shifts, as is conventional). Optimizer parameter groups may override it.
    """

    __slots__ = ("name", "value", "grad", "trainable", "decay")

    def __init__(self, name: str, value: np.ndarray, *, trainable: bool = True, decay: bool = True) -> None:
        value = np.asarray(value)
        if value.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter {name!r}: value must be float32 or float64, got dtype {value.dtype}")
        self.name = name
        self.value = np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)
        self.trainable = trainable
        self.decay = decay

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def size(self) -> int:
        return int(self.value.size)

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def assign(self, new_value: np.ndarray) -> None:
        """Copy `new_value` into the existing array (keeps every reference to it valid)."""
        new_value = np.asarray(new_value)
        if new_value.shape != self.value.shape:
            raise ValueError(f"Parameter {self.name!r}: cannot assign shape {new_value.shape} to shape {self.value.shape}")
        self.value[...] = new_value

    def __repr__(self) -> str:
        frozen = "" if self.trainable else ", frozen"
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype}{frozen})"
