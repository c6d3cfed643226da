"""Keras-style training for any model with the network protocol, and ensembles of trained models.

A model that mixes in `TrainingMixin` provides:
    parameters() -> list[Parameter];  forward(x, training) -> y;  backward(dy) -> dx (accumulating into each
    Parameter.grad);  zero_grad();  save(path, optimizer=None)
and gains compile / fit / evaluate / predict / train_on_batch. A loss is an object `loss(y_pred, y_true) ->
(value, dy_pred)` (by name from `convkit.losses`), a metric a function `fn(y_pred, y_true) -> float` (by name
from `convkit.metrics`). Samples are along the first axis of x and y.
"""
from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import anomaly, optim
from ._validate import check_bool, check_positive_int, check_real
from .callbacks import Callback
from .distributed.data_parallel import DataParallelFit
from .distributed.sampler import DistributedSampler
from .progress import ProgressBar

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class History(Callback):
    """What `fit` returns: `history[name]` is the per-epoch list of each log entry ('loss', metrics, 'val_*',
    'lr'), `epoch` the epochs run (from 0). `interrupted` is True when Ctrl-C stopped training; then
    `interrupted_at` = (epoch, batches completed in it). An epoch interrupted during its batches is not in
    `history`; one interrupted during its validation or on_epoch_end callbacks is."""

    def __init__(self) -> None:
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []
        self.interrupted = False
        self.interrupted_at: Optional[Tuple[int, int]] = None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _CtrlCAfterBatch:
    """While fit runs in the main thread, the first Ctrl-C (SIGINT) only sets `requested`, which fit checks
    after each batch; a second one raises KeyboardInterrupt at once. Elsewhere signals cannot be caught and
    Ctrl-C raises as usual."""

    def __enter__(self) -> "_CtrlCAfterBatch":
        self.requested = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _resolve(module: str, value: Any) -> Callable:
    """A loss or metric given by name (looked up in convkit.<module>) or as a callable object."""
    if callable(value) and not isinstance(value, str):
        return value
    return importlib.import_module(f"convkit.{module}").get(value)


def _metric_name(metric: Any, fn: Callable) -> str:
    if isinstance(metric, str):
        return metric
    return getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _check_samples(x, y) -> Tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"x and y must have a sample axis first, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have as many samples, got {len(x)} and {len(y)}")
    return x, y


def _check_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def _hold_out(x: np.ndarray, y: np.ndarray, validation_data, validation_split: float):
    """(x, y, validation): the training samples and the validation pair (or None). validation_data wins; else
    the last `validation_split` fraction of the samples is held out."""
    if validation_data is not None:
        return x, y, _check_samples(*validation_data)
    if validation_split > 0:
        split = int(len(x) * (1.0 - validation_split))
        if split == len(x):
            raise ValueError(f"validation_split={validation_split} of {len(x)} samples leaves no validation sample")
        x, y, validation = x[:split], y[:split], (x[split:], y[split:])
    else:
        validation = None
    if len(x) == 0:
        raise ValueError("fit needs at least one training sample, got 0")
    return x, y, validation


def _batches(n: int, batch_size: int):
    return range(0, n, batch_size)


class TrainingMixin:
    """compile / fit / evaluate / predict / train_on_batch for a model with the network protocol."""

    optimizer: Optional[optim.Optimizer] = None
    stop_training: bool = False
    _gradient_averager = None  # set by data-parallel fit (convkit.distributed): averages grads over the ranks

    def compile(self, optimizer: Union[str, optim.Optimizer] = "sgd", loss: Any = None,
                metrics: Optional[Sequence[Any]] = None) -> None:
        """Chooses the optimizer ('sgd', 'adam', 'adamw' or an Optimizer, bound here to the parameters), the
        loss (required) and the metrics (names or callables) that fit and evaluate report."""
        if loss is None:
            raise ValueError("compile needs a loss: a name from convkit.losses or a loss object, got None")
        self.optimizer = optim.get(optimizer).bind(self.parameters())
        self.loss = _resolve("losses", loss)
        self.compiled_metrics = []  # (name in the logs, function)
        for metric in metrics or []:
            fn = _resolve("metrics", metric)
            self.compiled_metrics.append((_metric_name(metric, fn), fn))

    def _require_compiled(self) -> None:
        if self.optimizer is None:
            raise RuntimeError("call compile(optimizer, loss, metrics) before training or evaluating")

    def _measure(self, y_pred: np.ndarray, y_true: np.ndarray, loss_value: float) -> Dict[str, float]:
        logs = {"loss": float(loss_value)}
        for name, fn in self.compiled_metrics:
            logs[name] = float(fn(y_pred, y_true))
        return logs

    def backward_for_step(self, dy) -> None:
        """The backward pass of a training step: only the parameter gradients are needed. A network that can
        skip the input gradient overrides this (Sequential and Model do); the default is backward(dy)."""
        self.backward(dy)

    def train_on_batch(self, x, y) -> Dict[str, float]:
        """One optimizer step on (x, y); returns the batch's loss and metrics (measured before the step)."""
        self._require_compiled()
        x, y = _check_samples(x, y)
        self.zero_grad()
        y_pred = self.forward(x, training=True)
        loss_value, dy = self.loss(y_pred, y)
        checking = anomaly.is_anomaly_detection_enabled()
        if checking:
            anomaly.check_loss(self.loss, loss_value, dy)
        self.backward_for_step(dy)
        if self._gradient_averager is not None:
            self._gradient_averager.synchronize()
        self.optimizer.step()
        if checking:
            anomaly.check_parameters(self.trainable_parameters(), self.optimizer.lr)
        return self._measure(y_pred, y, loss_value)

    def evaluate(self, x, y, batch_size: int = 32) -> Dict[str, float]:
        """Loss and metrics over (x, y) in inference mode: batch values averaged, weighted by batch size."""
        self._require_compiled()
        x, y = _check_samples(x, y)
        batch_size = check_positive_int(batch_size, "batch_size")
        if len(x) == 0:
            raise ValueError("evaluate needs at least one sample, got 0")
        return {key: total / len(x) for key, total in self._evaluation_totals(x, y, batch_size).items()}

    def _evaluation_totals(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, float]:
        """The sums over the samples of the loss and metrics (batch values times batch sizes)."""
        totals: Dict[str, float] = {}
        for start in _batches(len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            y_pred = self.forward(xb, training=False)
            for key, value in self._measure(y_pred, yb, self.loss(y_pred, yb)[0]).items():
                totals[key] = totals.get(key, 0.0) + value * len(xb)
        return totals

    def _predict_once(self, x: np.ndarray, batch_size: int, training: bool) -> np.ndarray:
        return np.concatenate([self.forward(x[s:s + batch_size], training=training)
                               for s in _batches(len(x), batch_size)])

    def predict(self, x, batch_size: int = 32,
                mc_samples: Optional[int] = None) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """Outputs for x, batch by batch, in inference mode. Thread-safe: several threads may call predict on
        one model at once (bit-identical to serial calls), but not while another thread trains it, and not with
        mc_samples (its passes run in training mode).

        mc_samples=M (Monte-Carlo dropout): M passes with training=True, so dropout stays on, and returns
        (mean, variance) over the passes (population variance, ddof=0), each of the output's shape. Note that
        training=True also puts BatchNorm in training mode (batch statistics, running averages updated).
        """
        x = np.asarray(x)
        batch_size = check_positive_int(batch_size, "batch_size")
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"predict needs at least one sample along x's first axis, got shape {x.shape}")
        if mc_samples is None:
            return self._predict_once(x, batch_size, training=False)
        mc_samples = check_positive_int(mc_samples, "mc_samples")
        first = self._predict_once(x, batch_size, training=True)
        mean, m2 = first.astype(np.float64), np.zeros(first.shape)
        for k in range(2, mc_samples + 1):  # Welford's running mean and sum of squared deviations, in float64
            sample = self._predict_once(x, batch_size, training=True)
            delta = sample - mean
            mean += delta / k
            m2 += delta * (sample - mean)
        return mean.astype(first.dtype), (m2 / mc_samples).astype(first.dtype)

    def _train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                     callbacks: List[Callback], bar: Optional[ProgressBar], ctrl_c: "_CtrlCAfterBatch",
                     augment: Optional[Augment], seed_words: Tuple[int, ...],
                     parallel: Optional[DataParallelFit]) -> Tuple[Dict[str, float], int]:
        """One pass over the samples in `order`, in mini-batches. Returns the logs averaged over the batches
        run (weighted by batch size) and how many ran: all, unless a callback stopped training or Ctrl-C came.
        Batch b is augmented with a generator seeded by (*seed_words, b): the same batch whatever happened
        before it, which is what makes a resumed run replay an interrupted one exactly. With `parallel`, each
        batch's logs and sample count are those of all the ranks' batches together."""
        totals: Dict[str, float] = {}
        samples = batches = 0
        for start in _batches(len(order), batch_size):
            index = order[start:start + batch_size]
            xb = x[index]
            if augment is not None:
                xb = augment(xb, np.random.default_rng([*seed_words, batches]))
            batch_logs = self.train_on_batch(xb, y[index])
            count = len(index)
            if parallel is not None:
                batch_logs, count, stop = parallel.reduce_batch(batch_logs, count, ctrl_c.requested)
                ctrl_c.requested = stop
            samples += count
            for key, value in batch_logs.items():
                totals[key] = totals.get(key, 0.0) + value * count
            for cb in callbacks:
                cb.on_batch_end(batches, batch_logs)
            batches += 1
            if bar:
                bar.update(batches, samples, {k: t / samples for k, t in totals.items()})
            if ctrl_c.requested or self.stop_training:
                break
        return {k: t / samples for k, t in totals.items()}, batches

    def fit(self, x, y, batch_size: int = 32, epochs: int = 1, validation_data: Optional[Tuple[Any, Any]] = None,
            validation_split: float = 0.0, shuffle: bool = True, callbacks: Optional[Sequence[Callback]] = None,
            verbose: int = 1, seed: Optional[int] = None, initial_epoch: int = 0,
            augment: Optional[Augment] = None, detect_anomaly: bool = False,
            distributed: Optional[bool] = None) -> History:
        """Trains for `epochs` epochs (from `initial_epoch`, for resuming) of mini-batches of x, y.

        validation_split: the last fraction of the samples (taken before shuffling) is held out for validation,
        unless validation_data=(x_val, y_val) is given. shuffle reorders the training samples every epoch with
        a generator seeded by (seed, epoch), so that any epoch's order can be replayed (resuming with
        initial_epoch=k continues exactly as the uninterrupted run; seed=None draws one seed per fit).
        augment(batch, rng) -> batch (e.g. a convkit.data.augmentations.Compose) transforms each training
        batch, rng seeded by (seed, epoch, batch index); validation data is never augmented. verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch (on
        stderr). Each epoch's logs hold the mean training loss and metrics over its batches, their `val_*`
        counterparts and `lr`.

        detect_anomaly=True turns anomaly detection (convkit.anomaly) on for this run: the first NaN or infinity
        in a layer's output or gradient, the loss or a parameter after a step raises AnomalyError naming where it
        came from, before the step that met it is recorded or any callback saves the model.

        Ctrl-C: the current batch finishes, the epoch is abandoned (no on_epoch_end), the callbacks'
        on_train_end runs, and the History comes back with `interrupted=True`; a second Ctrl-C raises
        KeyboardInterrupt at once (on_train_end still runs).

        distributed: data-parallel training over MPI (convkit.distributed; README "Distributed training over
        MPI"). None (the default) turns it on when an MPI launcher (mpiexec, mpirun) started this process and
        the world has more than one rank; True imports mpi4py (required) to ask MPI even when no launcher
        variable is recognised; False never (each rank trains alone). Data-parallel, batch_size
        is per rank, each rank trains on its share of the samples, gradients are averaged over the ranks, the
        logs are those of all the ranks, only rank 0 shows progress and runs the callbacks that write files
        (`Callback.rank_zero_only`), and the other ranks wait for them at the end of each epoch.
        """
        self._require_compiled()
        x, y = _check_samples(x, y)
        batch_size = check_positive_int(batch_size, "batch_size")
        epochs = check_positive_int(epochs, "epochs")
        if not 0 <= _check_int(initial_epoch, "initial_epoch") < epochs:
            raise ValueError(f"initial_epoch must be in [0, epochs={epochs}), got {initial_epoch!r}")
        validation_split = check_real(validation_split, "validation_split")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        checking = anomaly.detect_anomaly() if check_bool(detect_anomaly, "detect_anomaly") else contextlib.nullcontext()
        if distributed is not None:
            check_bool(distributed, "distributed")
        x, y, validation = _hold_out(x, y, validation_data, validation_split)

        history = History()
        parallel = DataParallelFit.for_fit(self, distributed)
        callback_list = [cb for cb in [*(callbacks or []), history]
                         if parallel is None or parallel.rank == 0 or not cb.rank_zero_only]
        if parallel is not None and parallel.rank != 0:
            verbose = 0
        for cb in callback_list:
            cb.set_model(self)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable (batch, rng) -> batch, got {augment!r}")
        seed = np.random.SeedSequence().entropy if seed is None else _check_int(seed, "seed")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed!r}")
        self.stop_training = False
        with _CtrlCAfterBatch() as ctrl_c, checking:
            try:
                if parallel is not None:
                    seed = parallel.begin(seed)
                # One process: the permutation of default_rng([seed, epoch]), all of it; K ranks: a K-th each.
                sampler = (DistributedSampler(len(x), 1, 0, seed=seed, shuffle=shuffle) if parallel is None
                           else parallel.sampler(len(x), seed, shuffle))
                rank_words = () if parallel is None else (parallel.rank,)  # each rank augments its own batches
                total_batches = len(_batches(len(sampler), batch_size))
                for cb in callback_list:
                    cb.on_train_begin({})
                for epoch in range(initial_epoch, epochs):
                    for cb in callback_list:
                        cb.on_epoch_begin(epoch, {})
                    bar = ProgressBar(epoch, epochs, total_batches, live=verbose == 1) if verbose else None
                    logs, batches_done = self._train_epoch(x, y, sampler.indices(epoch), batch_size, callback_list,
                                                           bar, ctrl_c, augment, (seed, epoch, *rank_words), parallel)
                    if ctrl_c.requested:  # the epoch is abandoned: no validation, no on_epoch_end
                        history.interrupted, history.interrupted_at = True, (epoch, batches_done)
                        if bar:
                            bar.interrupt()
                        break
                    if parallel is not None:
                        parallel.end_epoch()
                    if validation is not None:
                        scores = (self.evaluate(*validation, batch_size) if parallel is None
                                  else parallel.evaluate(*validation, batch_size))
                        logs.update({f"val_{k}": v for k, v in scores.items()})
                    logs["lr"] = self.optimizer.lr
                    if bar:
                        bar.finish(logs)
                    for cb in callback_list:
                        cb.on_epoch_end(epoch, logs)
                    if parallel is not None:  # also where the other ranks wait for rank 0's checkpoints
                        ctrl_c.requested, self.stop_training = parallel.any_rank(ctrl_c.requested, self.stop_training)
                    if ctrl_c.requested:  # Ctrl-C during validation or on_epoch_end: the epoch is recorded
                        history.interrupted, history.interrupted_at = True, (epoch, total_batches)
                    if self.stop_training or ctrl_c.requested:
                        break
            finally:
                if parallel is not None:
                    parallel.end()
                for cb in callback_list:
                    cb.on_train_end({})
        return history


def ensemble(models: Sequence[Any], x, mode: str = "average", batch_size: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """Combines the predictions of several models on x.

    'average': (mean, variance) of the models' outputs, elementwise over the models (population variance).
    'vote': each model votes for the class argmax(output, axis=-1); returns (winning class per sample, ties
    going to the lowest class index, as int64) and the variance of the vote for it, p * (1 - p) with p the
    fraction of models that chose it (0 when all agree).
    """
    if mode not in ("average", "vote"):
        raise ValueError(f"mode must be 'average' or 'vote', got {mode!r}")
    models = list(models)
    if not models:
        raise ValueError("ensemble needs at least one model, got none")
    outputs = np.stack([np.asarray(m.predict(x, batch_size=batch_size)) for m in models])
    if mode == "average":
        return outputs.mean(axis=0), outputs.var(axis=0)
    classes = outputs.shape[-1]
    votes = np.eye(classes, dtype=np.int64)[outputs.argmax(axis=-1)].sum(axis=0)  # (..., classes)
    winner = votes.argmax(axis=-1)
    share = np.take_along_axis(votes, winner[..., None], axis=-1)[..., 0] / len(models)
    return winner.astype(np.int64), share * (1.0 - share)
