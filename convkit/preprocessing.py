"""Input preprocessing fitted on training data and applied to any data (train, validation, test), for
channels-last batches x (N, *spatial, C):

- MeanImageSubtraction: subtracts the training set's mean image (one value per pixel and channel).
- ChannelMeanSubtraction: subtracts one mean per channel (over the samples and pixels).
- ChannelStandardization: subtracts the per-channel mean and divides by the per-channel standard
  deviation (population std; a constant channel is only centred).

Statistics are computed in float64. Floating-point input keeps its dtype; any other numeric input (e.g.
uint8 images) comes back as float64.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def _as_batch(x, name: str = "x") -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must be a batch (N, *spatial, C) with at least 2 axes, got shape {arr.shape}")
    return arr


def _result_dtype(x: np.ndarray) -> np.dtype:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


class _Preprocessor:
    """fit(x) learns statistics from a batch; transform(x) applies them to a batch of the same per-sample
    layout. `expected` is the trailing shape a transformed batch must have (set by fit)."""

    _expected_axes = "the shape"

    def __init__(self) -> None:
        self._expected: Optional[tuple] = None

    def fit(self, x) -> "_Preprocessor":
        x = _as_batch(x)
        if x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample to fit on, got shape {x.shape}")
        self._fit(x.astype(np.float64, copy=False))
        return self

    def transform(self, x) -> np.ndarray:
        if self._expected is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(x) on training data first")
        x = _as_batch(x)
        if x.shape[len(x.shape) - len(self._expected):] != self._expected:
            raise ValueError(f"x must have {self._expected_axes} {self._expected} the {type(self).__name__} was "
                             f"fitted on, got shape {x.shape}")
        return self._transform(x.astype(np.float64, copy=False)).astype(_result_dtype(x), copy=False)

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def _fit(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MeanImageSubtraction(_Preprocessor):
    """x - mean image: `mean_` is the training batch's mean over the samples, shape (*spatial, C)."""

    _expected_axes = "the per-sample shape"

    def _fit(self, x: np.ndarray) -> None:
        self.mean_ = x.mean(axis=0)
        self._expected = self.mean_.shape

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x - self.mean_


class ChannelMeanSubtraction(_Preprocessor):
    """x - per-channel mean: `mean_` (C,) is taken over the training batch's samples and pixels."""

    _expected_axes = "the channel count"

    def _fit(self, x: np.ndarray) -> None:
        self.mean_ = x.reshape(-1, x.shape[-1]).mean(axis=0)
        self._expected = self.mean_.shape

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x - self.mean_


class ChannelStandardization(_Preprocessor):
    """(x - mean_) / std_ per channel, both (C,) from the training batch's samples and pixels; a channel
    with zero spread gets std_ = 1 (it is only centred)."""

    _expected_axes = "the channel count"

    def _fit(self, x: np.ndarray) -> None:
        flat = x.reshape(-1, x.shape[-1])
        self.mean_ = flat.mean(axis=0)
        std = np.sqrt(((flat - self.mean_) ** 2).mean(axis=0))  # two-pass: no cancellation for large means
        self.std_ = np.where(std > 0, std, 1.0)
        self._expected = self.mean_.shape

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) / self.std_
