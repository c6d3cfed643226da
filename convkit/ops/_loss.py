"""Losses that return their value and its gradient in one call: softmax cross-entropy, negative
log-likelihood, binary cross-entropy on logits and mean squared error, with PyTorch's semantics.

The class axis is the last one (channels-last): logits (N, K) for classification, (N, *spatial, K) for
segmentation, with one label per row. Every loss returns (loss, grad): `loss` a Python float (float64
arithmetic) for reduction 'mean' or 'sum', an array of per-sample (or per-element) losses for 'none';
`grad` the gradient of the returned loss with respect to the predictions, in their shape and dtype. For
'none' the gradient is that of sum(dloss * losses), dloss being an optional upstream gradient (ones when
not given, i.e. the gradient of the sum). The core (csrc/ops/loss.h) computes in double with the
log-sum-exp shifted by the row maximum; targets, weights and dloss are cast to the predictions' dtype.
"""
from __future__ import annotations

import numbers
from typing import Optional, Union

import numpy as np

from .. import _C
from .._validate import as_float_array, check_real, shown

REDUCTIONS = ("mean", "sum", "none")
DEFAULT_IGNORE_INDEX = -100  # PyTorch's default: no valid class index is negative

LossValue = Union[float, np.ndarray]


# ---- argument checks -----------------------------------------------------------------------------------


def _check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {shown(reduction)}")
    return reduction


def _check_predictions(value, name: str, min_ndim: int) -> np.ndarray:
    x = as_float_array(value, name)
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {x.shape}")
    return x


def _check_class_predictions(value, name: str) -> np.ndarray:
    """logits or log-probabilities (N, *spatial, K), K >= 1."""
    x = _check_predictions(value, name, 2)
    if x.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one class (last axis), got shape {x.shape}")
    return x


def _check_ignore_index(ignore_index) -> int:
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {shown(ignore_index)}")
    return int(ignore_index)


def _check_label_smoothing(label_smoothing) -> float:
    label_smoothing = check_real(label_smoothing, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {shown(label_smoothing)}")
    return label_smoothing


def _check_weights(value, classes: int, name: str, allow_scalar: bool = False) -> Optional[np.ndarray]:
    """None, or finite non-negative weights, one per class (a scalar, if allowed, for every class), as a
    contiguous float64 (K,) array."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if allow_scalar and arr.ndim == 0:
        arr = np.full(classes, float(arr))
    if arr.shape != (classes,):
        scalar = "a number or " if allow_scalar else ""
        raise ValueError(f"{name} must be {scalar}one value per class, shape ({classes},), got shape {arr.shape}")
    bad = np.flatnonzero(~(arr >= 0) | ~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite and >= 0, got {name}[{bad[0]}] = {shown(float(arr[bad[0]]))}")
    return np.ascontiguousarray(arr)


def _check_labels(labels, logits: np.ndarray, ignore_index: int, name: str = "labels") -> np.ndarray:
    """Integer labels of shape logits.shape[:-1], each in [0, K) or equal to ignore_index, as contiguous
    int64 (R,)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be integer class indices, got dtype {labels.dtype}; for one-hot or probability targets "
            f"pass an array of the logits' shape {logits.shape}"
        )
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"{name} must have shape {logits.shape[:-1]} (the logits' without the class axis), "
                         f"got {labels.shape}")
    classes = logits.shape[-1]
    info = np.iinfo(labels.dtype)
    ignored = labels == ignore_index if info.min <= ignore_index <= info.max else np.zeros(labels.shape, bool)
    bad = np.flatnonzero(((labels < 0) | (labels >= classes)) & ~ignored)
    if bad.size:
        position = tuple(int(i) for i in np.unravel_index(bad[0], labels.shape))
        raise ValueError(
            f"{name}{list(position)} = {labels[position]} is outside [0, {classes}) for {classes} classes "
            f"and is not ignore_index={ignore_index}"
        )
    return np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)


def _check_targets(targets, predictions: np.ndarray, name: str) -> np.ndarray:
    """Real-valued targets of the predictions' shape, cast to their dtype (bool and integer one-hot arrays
    are accepted)."""
    targets = np.asarray(targets)
    if targets.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {targets.dtype}")
    if targets.shape != predictions.shape:
        raise ValueError(f"{name} must have the predictions' shape {predictions.shape}, got {targets.shape}")
    return np.ascontiguousarray(targets, dtype=predictions.dtype)


def _check_dloss(dloss, reduction: str, shape: tuple, dtype: np.dtype) -> Optional[np.ndarray]:
    """The upstream gradient of the per-sample losses: reduction 'none' only, of the losses' shape."""
    if dloss is None:
        return None
    if reduction != "none":
        raise ValueError(f"dloss is the upstream gradient of reduction='none' losses; got reduction={shown(reduction)}")
    dloss = as_float_array(dloss, "dloss")
    if dloss.shape != shape:
        raise ValueError(f"dloss must have the losses' shape {shape}, got {dloss.shape}")
    return np.ascontiguousarray(dloss, dtype=dtype).reshape(-1)


def _rows(x: np.ndarray) -> np.ndarray:
    """x as a contiguous (R, K) array, K its last axis."""
    return np.ascontiguousarray(x).reshape(int(np.prod(x.shape[:-1])), x.shape[-1])


def _run(core, x: np.ndarray, loss_shape: tuple, reduction: str, dloss, *args) -> tuple[LossValue, np.ndarray]:
    """Runs core(x2, *args, reduction, dloss, losses, grad) on the (R, K) view of x; returns (loss, grad)."""
    dloss = _check_dloss(dloss, reduction, loss_shape, x.dtype)
    x2 = _rows(x)
    grad = np.empty_like(x2)
    losses = np.empty(int(np.prod(loss_shape)), dtype=x.dtype) if reduction == "none" else None
    value = core(x2, *args, reduction, dloss, losses, grad)
    return (losses.reshape(loss_shape) if losses is not None else float(value)), grad.reshape(x.shape)


# ---- the losses ----------------------------------------------------------------------------------------


def softmax_cross_entropy(logits, targets, *, weight=None, ignore_index: int = DEFAULT_IGNORE_INDEX,
                          label_smoothing: float = 0.0, reduction: str = "mean",
                          dloss=None) -> tuple[LossValue, np.ndarray]:
    """Cross-entropy of softmax(logits) along the last axis (torch.nn.functional.cross_entropy), and its
    gradient with respect to the logits.

    logits: (N, K) or (N, *spatial, K), float32 or float64 - raw scores, not probabilities.
    targets: either integer class indices of shape (N, *spatial), where ignore_index marks positions to
      leave out (loss and gradient 0), or one-hot / probability targets of the logits' shape (used as
      given: they need not sum to 1).
    weight: (K,) non-negative class weights, or None. label_smoothing: eps in [0, 1]; the target becomes
      (1 - eps) * target + eps / K.
    reduction: 'mean' divides the summed losses by the summed weights w[y] of the non-ignored labels (the
      number of them without weights) for class indices, and by N * prod(spatial) for probability targets
      (weights or not, as PyTorch); a mean over nothing is NaN. 'sum', or 'none' for losses of shape
      (N, *spatial) with dloss (that shape) as their upstream gradient.

    Returns (loss, dlogits), dlogits of the logits' shape and dtype.
    """
    logits = _check_class_predictions(logits, "logits")
    reduction = _check_reduction(reduction)
    ignore_index = _check_ignore_index(ignore_index)
    label_smoothing = _check_label_smoothing(label_smoothing)
    weight = _check_weights(weight, logits.shape[-1], "weight")
    targets = np.asarray(targets)
    loss_shape = logits.shape[:-1]
    if targets.ndim == logits.ndim - 1:
        labels = _check_labels(targets, logits, ignore_index, "targets")
        return _run(_C.softmax_cross_entropy_labels, logits, loss_shape, reduction, dloss, labels, ignore_index,
                    weight, label_smoothing)
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must be class indices of shape {loss_shape} or probabilities of the logits' shape "
            f"{logits.shape}, got shape {targets.shape}"
        )
    if ignore_index != DEFAULT_IGNORE_INDEX:
        raise ValueError(f"ignore_index applies to class-index targets only, got ignore_index={ignore_index} with "
                         f"probability targets of shape {targets.shape}")
    probabilities = _rows(_check_targets(targets, logits, "targets"))
    return _run(_C.softmax_cross_entropy_probabilities, logits, loss_shape, reduction, dloss, probabilities, weight,
                label_smoothing)


def nll_loss(log_probs, labels, *, weight=None, ignore_index: int = DEFAULT_IGNORE_INDEX, reduction: str = "mean",
             dloss=None) -> tuple[LossValue, np.ndarray]:
    """Negative log-likelihood of log-probabilities at integer labels (torch.nn.functional.nll_loss), and its
    gradient with respect to log_probs. loss[n] = -weight[y[n]] * log_probs[n, y[n]].

    log_probs: (N, K) or (N, *spatial, K), e.g. the output of a log-softmax. labels: integer (N, *spatial),
    each in [0, K) or equal to ignore_index (loss and gradient 0). weight: (K,) non-negative, or None.
    reduction: 'mean' (divided by the summed weights of the non-ignored labels; a mean over nothing is
    NaN), 'sum', or 'none' (losses (N, *spatial), dloss that shape). Returns (loss, dlog_probs).
    """
    log_probs = _check_class_predictions(log_probs, "log_probs")
    reduction = _check_reduction(reduction)
    ignore_index = _check_ignore_index(ignore_index)
    weight = _check_weights(weight, log_probs.shape[-1], "weight")
    labels = _check_labels(labels, log_probs, ignore_index)
    return _run(_C.nll_loss, log_probs, log_probs.shape[:-1], reduction, dloss, labels, ignore_index, weight)


def binary_cross_entropy_with_logits(logits, targets, *, pos_weight=None, reduction: str = "mean",
                                     dloss=None) -> tuple[LossValue, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against targets, elementwise and numerically stable
    (torch.nn.functional.binary_cross_entropy_with_logits), and its gradient with respect to the logits:

        loss = -(pos_weight * t * log(sigmoid(z)) + (1 - t) * log(1 - sigmoid(z)))

    logits: any shape with at least one axis, float32 or float64 - raw scores, not probabilities.
    targets: the logits' shape, usually in [0, 1] (used as given). pos_weight: weight of the positive term
    per class of the last axis, a number or (K,), non-negative, or None (1). reduction: 'mean' over all
    elements, 'sum', or 'none' (losses of the logits' shape, dloss that shape). Returns (loss, dlogits).
    """
    logits = _check_predictions(logits, "logits", 1)
    reduction = _check_reduction(reduction)
    pos_weight = _check_weights(pos_weight, logits.shape[-1], "pos_weight", allow_scalar=True)
    targets = _rows(_check_targets(targets, logits, "targets"))
    return _run(_C.binary_cross_entropy_with_logits, logits, logits.shape, reduction, dloss, targets, pos_weight)


def mse_loss(y_pred, y_true, *, reduction: str = "mean", dloss=None) -> tuple[LossValue, np.ndarray]:
    """Mean squared error (y_pred - y_true)^2 (torch.nn.functional.mse_loss), and its gradient with respect
    to y_pred.

    y_pred: any shape with at least one axis, float32 or float64. y_true: the same shape (no broadcasting).
    reduction: 'mean' over all elements, 'sum', or 'none' (losses of y_pred's shape, dloss that shape).
    Returns (loss, dy_pred).
    """
    y_pred = _check_predictions(y_pred, "y_pred", 1)
    reduction = _check_reduction(reduction)
    y_true = _rows(_check_targets(y_true, y_pred, "y_true"))
    return _run(_C.mse_loss, y_pred, y_pred.shape, reduction, dloss, y_true)
