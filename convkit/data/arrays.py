"""Datasets given as NumPy arrays or .npz files."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def from_arrays(x, y) -> Tuple[np.ndarray, np.ndarray]:
    """Check and normalise an in-memory dataset: x (N, H, W) or (N, H, W, C) images (uint8 kept, floating
    kept as float32), y (N,) integer labels -> (x (N, H, W, C), y int64)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"x must be uint8 or floating images, got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
        raise ValueError(f"y must be {x.shape[0]} integer labels (shape ({x.shape[0]},)), got {y.dtype} {y.shape}")
    return np.ascontiguousarray(x), y.astype(np.int64)


def load_npz(path, x_key: str = "x", y_key: str = "y") -> Tuple[np.ndarray, np.ndarray]:
    """x and y from a .npz file (read without pickle), checked by from_arrays."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in (x_key, y_key) if k not in f.files]
        if missing:
            raise ValueError(f"{path}: no array named {missing[0]!r} (has {f.files})")
        return from_arrays(f[x_key], f[y_key])
