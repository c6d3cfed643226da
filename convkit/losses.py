"""Loss objects for the training loop: `loss(y_pred, y_true) -> (value, dy_pred)`, by name or configured.

Each object wraps one function of `convkit.ops` (see there for shapes and semantics) with its options fixed
at construction, where they are checked. `value` is a Python float for reduction 'mean' (the default) or
'sum', and `dy_pred` the gradient of `value` with respect to `y_pred`, ready for the network's backward
pass. `get_config()` returns the name and options, from which `get` rebuilds the object.

The cross-entropies take *logits* (raw scores, before any softmax or sigmoid), not probabilities: the
softmax / sigmoid is part of the loss, which is what makes it numerically stable. A network trained with
them has no softmax layer at its end; apply one (or not: argmax is the same) at inference.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from .ops import _loss
from .ops._loss import DEFAULT_IGNORE_INDEX, LossValue


def _weights_option(value, name: str, allow_scalar: bool = False) -> Optional[np.ndarray]:
    """Class weights (or pos_weight) given at construction: checked now, against the class count at call."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.ndim > 1 or (arr.ndim == 0 and not allow_scalar):
        raise ValueError(f"{name} must be {'a number or ' if allow_scalar else ''}a 1-D array, got shape {arr.shape}")
    return _loss._check_weights(arr, arr.size, name, allow_scalar=allow_scalar)


def _weights_config(value: Optional[np.ndarray]) -> Optional[list]:
    return None if value is None else [float(v) for v in value]


class Loss:
    """Base of the loss objects. Subclasses set `name` (the key `get` knows them by) and implement `__call__`
    and `_options` (the constructor's keyword arguments, JSON-friendly)."""

    name = ""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _loss._check_reduction(reduction)

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        raise NotImplementedError

    def _options(self) -> dict:
        return {"reduction": self.reduction}

    def get_config(self) -> dict:
        """{'name': ..., **options}: `get(config)` builds an equal loss."""
        return {"name": self.name, **self._options()}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({options})"


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy on logits (N, *spatial, K) against integer labels (N, *spatial) or one-hot /
    probability targets of the logits' shape (`convkit.ops.softmax_cross_entropy`). Keras'
    'sparse_categorical_crossentropy' with from_logits=True."""

    name = "softmax_cross_entropy"

    def __init__(self, *, weight=None, ignore_index: int = DEFAULT_IGNORE_INDEX, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = _weights_option(weight, "weight")
        self.ignore_index = _loss._check_ignore_index(ignore_index)
        self.label_smoothing = _loss._check_label_smoothing(label_smoothing)

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        return _loss.softmax_cross_entropy(y_pred, y_true, weight=self.weight, ignore_index=self.ignore_index,
                                           label_smoothing=self.label_smoothing, reduction=self.reduction)

    def _options(self) -> dict:
        return {"weight": _weights_config(self.weight), "ignore_index": self.ignore_index,
                "label_smoothing": self.label_smoothing, **super()._options()}


class CategoricalCrossentropy(Loss):
    """Softmax cross-entropy on logits (N, *spatial, K) against one-hot or probability targets of the same
    shape only (Keras' 'categorical_crossentropy' with from_logits=True); integer labels are refused, so
    that a label array is never mistaken for targets."""

    name = "categorical_crossentropy"

    def __init__(self, *, weight=None, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = _weights_option(weight, "weight")
        self.label_smoothing = _loss._check_label_smoothing(label_smoothing)

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        if np.shape(y_true) != np.shape(y_pred):
            raise ValueError(f"categorical_crossentropy needs one-hot or probability targets of the logits' shape "
                             f"{np.shape(y_pred)}, got shape {np.shape(y_true)}; for integer labels use "
                             f"'sparse_categorical_crossentropy'")
        return _loss.softmax_cross_entropy(y_pred, y_true, weight=self.weight, label_smoothing=self.label_smoothing,
                                           reduction=self.reduction)

    def _options(self) -> dict:
        return {"weight": _weights_config(self.weight), "label_smoothing": self.label_smoothing,
                **super()._options()}


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities (N, *spatial, K) at integer labels (N, *spatial)
    (`convkit.ops.nll_loss`); for a network that ends in a log-softmax."""

    name = "nll"

    def __init__(self, *, weight=None, ignore_index: int = DEFAULT_IGNORE_INDEX, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = _weights_option(weight, "weight")
        self.ignore_index = _loss._check_ignore_index(ignore_index)

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        return _loss.nll_loss(y_pred, y_true, weight=self.weight, ignore_index=self.ignore_index,
                              reduction=self.reduction)

    def _options(self) -> dict:
        return {"weight": _weights_config(self.weight), "ignore_index": self.ignore_index, **super()._options()}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy on logits against targets of the same shape
    (`convkit.ops.binary_cross_entropy_with_logits`; Keras' 'binary_crossentropy' with from_logits=True).
    pos_weight: a number or one per class of the last axis."""

    name = "binary_crossentropy"

    def __init__(self, *, pos_weight=None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.pos_weight = _weights_option(pos_weight, "pos_weight", allow_scalar=True)

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        pos_weight = self.pos_weight
        if pos_weight is not None and pos_weight.size == 1:
            pos_weight = float(pos_weight[0])  # a number applies to every class, whatever their count
        return _loss.binary_cross_entropy_with_logits(y_pred, y_true, pos_weight=pos_weight, reduction=self.reduction)

    def _options(self) -> dict:
        return {"pos_weight": _weights_config(self.pos_weight), **super()._options()}


class MeanSquaredError(Loss):
    """Mean squared error against targets of the same shape (`convkit.ops.mse_loss`)."""

    name = "mse"

    def __call__(self, y_pred, y_true) -> tuple[LossValue, np.ndarray]:
        return _loss.mse_loss(y_pred, y_true, reduction=self.reduction)


_BY_NAME: dict[str, type] = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "nll": NLLLoss,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
}

LossLike = Union[str, dict, Loss, Callable[[Any, Any], tuple]]


def get(identifier: LossLike) -> Callable[[Any, Any], tuple]:
    """The loss for `identifier`: a name (e.g. 'softmax_cross_entropy', with default options), a config
    dict from `get_config()` ({'name': ..., **options}), or a loss object / any callable
    `(y_pred, y_true) -> (value, dy_pred)`, returned as it is."""
    if isinstance(identifier, str):
        return _loss_class(identifier)()
    if isinstance(identifier, dict):
        options = dict(identifier)
        if "name" not in options:
            raise ValueError(f"a loss config needs a 'name', got {identifier!r}")
        return _loss_class(options.pop("name"))(**options)
    if callable(identifier):
        return identifier
    raise TypeError(f"a loss must be a name, a config dict or a callable, got {identifier!r}")


def _loss_class(name: str) -> type:
    if name not in _BY_NAME:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[name]
