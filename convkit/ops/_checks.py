"""Argument checks shared by the functional API's modules."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._validate import as_float_array, shown

ACTIVATIONS = ("none", "relu", "leaky_relu")


def check_activation(activation: Optional[str]) -> str:
    activation = "none" if activation is None else activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None, 'relu' or 'leaky_relu', got {shown(activation)}")
    return activation


def check_bias(bias, length: int, dtype: np.dtype, what: str) -> Optional[np.ndarray]:
    if bias is None:
        return None
    bias = np.ascontiguousarray(as_float_array(bias, "bias"), dtype=dtype)
    if bias.shape != (length,):
        raise ValueError(f"bias must have shape ({length},) ({what}), got {bias.shape}")
    return bias
