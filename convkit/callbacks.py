"""Callbacks for `fit`: hooks called at the start and end of training, of each epoch and after each batch.

Epochs passed to the hooks count from 0; `logs` holds the epoch's (or batch's) loss, metrics, `val_*`
entries and `lr`. A callback stops training by setting `self.model.stop_training = True`; `fit` checks the
flag after every batch.
"""
from __future__ import annotations

import csv
import math
import os
import sys
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from .schedules import Schedule

Logs = Dict[str, float]


class Callback:
    """Base class: every hook does nothing. `self.model` is set by `fit` before `on_train_begin`.

    rank_zero_only: in data-parallel training (convkit.distributed), fit calls this callback on rank 0 only.
    True for the callbacks that write files (checkpoints, CSV logs): one writer, no races on the same path.
    Every other callback runs on every rank, where it sees the same logs and so decides the same.
    """

    model = None
    rank_zero_only = False

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: Optional[Logs] = None) -> None: ...
    def on_train_end(self, logs: Optional[Logs] = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None: ...


def _monitor_mode(monitor: str, mode: str) -> str:
    """'min' or 'max'; 'auto' means 'max' for accuracy-like names, else 'min'."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor or "auc" in monitor else "min"
    return mode


def _improves(current: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    return current < best - min_delta if mode == "min" else current > best + min_delta


def _finite_or_warn(model, who: str) -> bool:
    """Whether every parameter of model is finite; if not, says that the checkpoint is not written (a model
    that diverged must not replace the last good checkpoint)."""
    for param in model.parameters():
        if not np.isfinite(param.value).all():
            print(f"{who}: parameter {param.name!r} is not finite; checkpoint not saved (the last one is kept)",
                  file=sys.stderr)
            return False
    return True


def _monitored(logs: Optional[Logs], monitor: str, who: str) -> Optional[float]:
    value = (logs or {}).get(monitor)
    if value is None:
        print(f"{who}: {monitor!r} is not in the logs (have {sorted(logs or {})}); skipped", file=sys.stderr)
    return value


class ModelCheckpoint(Callback):
    """Saves the model (with its optimizer's state, for resuming) with `model.save(path, optimizer)` at the end
    of each epoch, or only when `monitor` improved if `save_best_only`.

    `filepath` is formatted with `epoch` (counted from 1, as Keras does) and the epoch's logs, e.g.
    'ckpt-{epoch:03d}-{val_loss:.4f}.ckpt'. model.save writes atomically, so an interrupted save never leaves a
    truncated checkpoint behind, and a model with a non-finite parameter (training diverged) is not saved, so
    the last good checkpoint stays.
    """

    rank_zero_only = True

    def __init__(self, filepath: Union[str, os.PathLike], monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", save_optimizer: bool = True) -> None:
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _monitor_mode(monitor, mode)
        self.save_optimizer = save_optimizer
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: List[str] = []  # paths written, in order

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not _improves(current, self.best, self.mode):
                return
            self.best = current
        if not _finite_or_warn(self.model, "ModelCheckpoint"):
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        optimizer = getattr(self.model, "optimizer", None) if self.save_optimizer else None
        self.model.save(path, optimizer=optimizer)
        self.saved.append(path)


class EarlyStopping(Callback):
    """Stops training after `patience` epochs in a row in which `monitor` did not improve by more than
    `min_delta` (Keras' rule; patience=0 stops at the first such epoch, as patience=1 does).

    With `restore_best_weights`, the parameters of the best epoch are copied back when training ends (if the
    last epoch was not the best). `stopped_epoch` is the epoch after which training stopped (or None), and
    `best_epoch` the best one.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False) -> None:
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience!r}")
        self.mode = _monitor_mode(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None
        self.last_epoch: Optional[int] = None
        self.best_weights: Optional[List[np.ndarray]] = None

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = epoch
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None:
            return
        if _improves(current, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [p.value.copy() for p in self.model.parameters()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None and self.best_epoch != self.last_epoch:
            for p, best in zip(self.model.parameters(), self.best_weights):
                p.assign(best)


class CSVLogger(Callback):
    """Writes one row per epoch: 'epoch' (from 0) then the logs' entries in sorted order, with a header row
    unless appending to a file that already has rows. The file is flushed after each epoch."""

    rank_zero_only = True

    def __init__(self, filename: Union[str, os.PathLike], separator: str = ",", append: bool = False) -> None:
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys: Optional[List[str]] = None  # the columns, fixed by the first epoch's logs
        self._needs_header = True

    def on_train_begin(self, logs=None):
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self._keys, self._needs_header = None, None, not has_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if self._needs_header:
                self._writer.writerow(["epoch", *self._keys])
        self._writer.writerow([epoch, *(logs.get(k, "") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stops training after the first batch whose loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"TerminateOnNaN: batch {batch} has loss {loss}; stopping", file=sys.stderr)
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Sets the optimizer's lr from a schedule each epoch.

    `schedule` is a `convkit.schedules.Schedule` or a function `fn(epoch, lr) -> lr` (Keras' signature; epoch
    from 0). Epoch-indexed schedules and functions set the lr at the start of each epoch; ReduceLROnPlateau
    sees its `monitor` at the end of each epoch and sets the lr of the next one. The schedule's initial_lr is
    the optimizer's lr when it was not given.
    """

    def __init__(self, schedule: Union[Schedule, Callable[[int, float], float]], verbose: int = 0) -> None:
        if not (isinstance(schedule, Schedule) or callable(schedule)):
            raise TypeError(f"schedule must be a Schedule or a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        if isinstance(self.schedule, Schedule):
            self.schedule.bind(self.model.optimizer)

    def _set(self, epoch: int, lr: float) -> None:
        self.model.optimizer.lr = lr
        if self.verbose:
            print(f"epoch {epoch + 1}: learning rate {lr:.6g}", file=sys.stderr)

    def on_epoch_begin(self, epoch, logs=None):
        if not isinstance(self.schedule, Schedule):
            self._set(epoch, float(self.schedule(epoch, self.model.optimizer.lr)))
        elif self.schedule.monitor is None:
            self.schedule.epoch = epoch
            self._set(epoch, self.schedule.lr_at(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(self.schedule, Schedule) and self.schedule.monitor is not None:
            current = _monitored(logs, self.schedule.monitor, "LearningRateScheduler")
            if current is not None:
                self._set(epoch + 1, self.schedule.step(current))


class RunCheckpoint(Callback):
    """Saves everything a run needs to resume bit-identically, at the end of every epoch, atomically: weights and
    state, the optimizer's state, and as metadata the number of epochs done, the history so far, `run_args`
    (how the run was started), the schedule's state and convkit.random's global state.

    Put it after a LearningRateScheduler in the callback list, so the saved optimizer carries the next
    epoch's learning rate. A model with a non-finite parameter is not saved (the last good checkpoint stays).
    Resume with convkit.saving.read_metadata(path)["training"] and fit(initial_epoch=...).
    """

    rank_zero_only = True

    def __init__(self, filepath: Union[str, os.PathLike], run_args: Dict, schedule: Optional[Schedule] = None,
                 history: Optional[Dict[str, List[float]]] = None) -> None:
        self.filepath = os.fspath(filepath)
        self.run_args = dict(run_args)
        self.schedule = schedule
        self.history: Dict[str, List[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epochs_done = 0

    def on_epoch_end(self, epoch, logs=None):
        from . import random

        if not _finite_or_warn(self.model, "RunCheckpoint"):
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        training = {"epoch": epoch + 1, "history": self.history, "args": self.run_args,
                    "schedule": self.schedule.state_dict() if self.schedule is not None else None,
                    "random": random.get_state()}
        self.model.save(self.filepath, optimizer=self.model.optimizer, metadata={"training": training})
