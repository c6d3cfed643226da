"""Classification metrics for the training loop: `metric(y_pred, y_true) -> float`, or by name with `get`.

y_pred holds scores along the last axis, (N, K) or (N, *spatial, K) (logits or probabilities: the ranking
is the same); y_true holds integer labels (N, *spatial) or one-hot / probability targets of y_pred's
shape (their argmax is the label). Every position counts once (pixel accuracy for segmentation). An empty
batch gives NaN.
"""
from __future__ import annotations

import numbers
import re
from typing import Callable

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], float]


def _scores(y_pred) -> np.ndarray:
    scores = np.asarray(y_pred)
    if scores.dtype.kind not in "iuf" or scores.ndim < 2 or scores.shape[-1] == 0:
        raise ValueError(f"y_pred must be real scores of shape (N, ..., K) with K >= 1, got dtype {scores.dtype} "
                         f"and shape {scores.shape}")
    return scores


def _labels(y_true, scores: np.ndarray) -> np.ndarray:
    """Integer labels of shape scores.shape[:-1], from labels or from one-hot / probability targets."""
    y_true = np.asarray(y_true)
    if y_true.shape == scores.shape:
        return np.argmax(y_true, axis=-1)
    if y_true.shape != scores.shape[:-1] or y_true.dtype.kind not in "iu":
        raise ValueError(f"y_true must be integer labels of shape {scores.shape[:-1]} or targets of y_pred's shape "
                         f"{scores.shape}, got dtype {y_true.dtype} and shape {y_true.shape}")
    classes = scores.shape[-1]
    if y_true.size and (y_true.min() < 0 or y_true.max() >= classes):
        raise ValueError(f"y_true labels must be in [0, {classes}), got values in [{y_true.min()}, {y_true.max()}]")
    return y_true


def _mean(hits: np.ndarray) -> float:
    return float(np.mean(hits)) if hits.size else float("nan")


def accuracy(y_pred, y_true) -> float:
    """The fraction of positions whose highest score (the first, on ties) is at the true class."""
    scores = _scores(y_pred)
    return _mean(np.argmax(scores, axis=-1) == _labels(y_true, scores))


def top_k_accuracy(y_pred, y_true, k: int = 5) -> float:
    """The fraction of positions whose true class is among the k highest scores: fewer than k classes score
    strictly higher than it (so a tie at the k-th place counts as a hit). k must be in [1, K]."""
    scores = _scores(y_pred)
    labels = _labels(y_true, scores)
    classes = scores.shape[-1]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or not 1 <= k <= classes:
        raise ValueError(f"k must be an int in [1, {classes}] for {classes} classes, got {k!r}")
    true_scores = np.take_along_axis(scores, labels[..., None].astype(np.intp), axis=-1)
    higher = np.sum(scores > true_scores, axis=-1)
    return _mean((higher < k) & ~np.isnan(true_scores[..., 0]))


def binary_accuracy(y_pred, y_true, threshold: float = 0.0) -> float:
    """The fraction of elements where (y_pred > threshold) agrees with (y_true > 0.5). The default threshold 0
    suits logits (sigmoid(0) = 0.5), as binary_crossentropy takes; use threshold=0.5 for probabilities."""
    y_pred, y_true = np.asarray(y_pred), np.asarray(y_true)
    if y_pred.shape != y_true.shape:
        raise ValueError(f"y_true must have y_pred's shape {y_pred.shape}, got {y_true.shape}")
    return _mean((y_pred > threshold) == (y_true > 0.5))


_TOP_K = re.compile(r"top_(\d+)_accuracy")
_BY_NAME: dict[str, Metric] = {"accuracy": accuracy, "binary_accuracy": binary_accuracy}


def _top_k(k: int) -> Metric:
    def metric(y_pred, y_true) -> float:
        return top_k_accuracy(y_pred, y_true, k)

    metric.__name__ = f"top_{k}_accuracy"
    return metric


def get(identifier) -> Metric:
    """The metric for a name - 'accuracy', 'binary_accuracy', 'top_k_accuracy' (k = 5) or 'top_<k>_accuracy'
    (e.g. 'top_3_accuracy') - or a callable `(y_pred, y_true) -> float`, returned as it is."""
    if callable(identifier):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a callable, got {identifier!r}")
    if identifier in _BY_NAME:
        return _BY_NAME[identifier]
    if identifier == "top_k_accuracy":
        return _top_k(5)
    match = _TOP_K.fullmatch(identifier)
    if match and int(match.group(1)) >= 1:
        return _top_k(int(match.group(1)))
    raise ValueError(f"unknown metric {identifier!r}; known metrics: accuracy, binary_accuracy, top_k_accuracy "
                     f"(k = 5), top_<k>_accuracy")
