"""The default embedded dataset: scikit-learn's 8x8 handwritten digits (1797 real images, 10 classes)."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), each sorted: from every class, round(test_fraction * count) randomly chosen
    samples go to test (a permutation per class from numpy's default_rng(seed))."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        cut = int(round(test_fraction * members.size))
        test.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(split: str = "train", seed: int = 0, test_fraction: float = 0.2) -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as x (N, 8, 8, 1) float32 in [0, 1] (pixel value / 16) and y (N,) int64.

    split: 'train', 'test' or 'all'. The split is stratified and deterministic for a seed; with the
    default test_fraction=0.2, test holds 359 images and train 1438 (of 1797)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError('load_digits needs scikit-learn: pip install "convkit[demo]"') from None
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    if split == "all":
        return x, y
    train, test = stratified_split(y, test_fraction, seed)
    chosen = train if split == "train" else test
    return x[chosen], y[chosen]
