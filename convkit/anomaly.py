"""Anomaly detection: an opt-in mode that finds where a NaN or an infinity first appears in training.

    convkit.set_anomaly_detection(True)          # process-wide, or for one run:
    model.fit(x, y, detect_anomaly=True)         # or: with convkit.detect_anomaly(): ...

While it is on, every layer call checks its forward output and its input gradient (and the parameter
gradients it added), the loss checks its value and gradient, and each optimizer step checks the
parameters it changed; the first non-finite value raises AnomalyError naming the layer (or the loss, the
optimizer's parameter) that produced it from finite inputs, or the layer that first received it (data that
already held NaN). Each check is a pass over the array, so the mode costs time: use it to debug.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Union

import numpy as np

from ._validate import check_bool

Arrays = Union[np.ndarray, list, tuple]

_enabled = False


class AnomalyError(FloatingPointError):
    """A NaN or an infinity found by anomaly detection; the message names where it came from."""


def set_anomaly_detection(enabled: bool) -> None:
    """Turn anomaly detection on or off for the whole process (default off)."""
    global _enabled
    _enabled = check_bool(enabled, "enabled")


def is_anomaly_detection_enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Anomaly detection on inside the block; the previous setting back after it."""
    previous = _enabled
    set_anomaly_detection(True)
    try:
        yield
    finally:
        set_anomaly_detection(previous)


def _as_list(arrays: Arrays) -> list:
    return list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]


def _count(arrays: Arrays) -> str:
    """'2 NaN and 0 infinite among 96 values' over the non-finite arrays."""
    arrays = [np.asarray(a) for a in _as_list(arrays) if a is not None]
    nans = sum(int(np.isnan(a).sum()) for a in arrays)
    infs = sum(int(np.isinf(a).sum()) for a in arrays)
    return f"{nans} NaN and {infs} infinite among {sum(a.size for a in arrays)} values"


def all_finite(arrays: Arrays) -> bool:
    return all(np.isfinite(a).all() for a in _as_list(arrays) if a is not None)


def _describe(layer) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def check_forward(layer, inputs: Arrays, output: Arrays) -> None:
    if all_finite(output):
        return
    if not all_finite(inputs):
        raise AnomalyError(f"anomaly detection: {_describe(layer)} received non-finite input in forward "
                           f"({_count(inputs)}): it comes from the data, no earlier layer produced it")
    raise AnomalyError(f"anomaly detection: {_describe(layer)} produced non-finite values in forward from finite "
                       f"inputs ({_count(output)})")


def check_backward(layer, dy: Arrays, dx: Arrays) -> None:
    if not all_finite(dy):
        raise AnomalyError(f"anomaly detection: {_describe(layer)} received a non-finite output gradient in "
                           f"backward ({_count(dy)}): it comes from the loss")
    if not all_finite(dx):
        raise AnomalyError(f"anomaly detection: {_describe(layer)} produced a non-finite input gradient in backward "
                           f"from a finite output gradient ({_count(dx)})")
    for param in layer.parameters():
        if param.trainable and not all_finite(param.grad):
            raise AnomalyError(f"anomaly detection: {_describe(layer)} produced a non-finite gradient for parameter "
                               f"{param.name!r} in backward ({_count(param.grad)})")


def check_loss(loss, value: float, dy: Arrays) -> None:
    if not all_finite([np.asarray(value), *_as_list(dy)]):
        raise AnomalyError(f"anomaly detection: the loss {getattr(loss, 'name', type(loss).__name__)!r} gave a "
                           f"non-finite value ({value}) or gradient ({_count(dy)}) from finite predictions")


def check_parameters(parameters: Iterable, lr: float) -> None:
    for param in parameters:
        if not all_finite(param.value):
            raise AnomalyError(f"anomaly detection: the optimizer step (lr={lr}) made parameter {param.name!r} "
                               f"non-finite ({_count(param.value)}) from finite gradients")
