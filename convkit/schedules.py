"""Learning-rate schedules, per epoch, and an exponential moving average of the weights.

Epochs count from 0: `lr_at(0)` is the initial learning rate. Epoch-indexed schedules (StepLR, MultiStepLR,
InverseTimeDecay, CosineDecay) are pure functions of the epoch; ReduceLROnPlateau reacts to a metric.
Every schedule has `step(metric=None) -> lr`, which ends an epoch: it advances `epoch` by one and returns
the learning rate for the next epoch (writing it into `optimizer.lr` when one was given). In `fit`, use them
through `callbacks.LearningRateScheduler`. `initial_lr` defaults to the lr of the optimizer the schedule is
given or bound to (`fit` binds it to the model's).
"""
from __future__ import annotations

import bisect
import math
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from ._validate import check_nonnegative, check_positive_int, check_real
from .parameter import Parameter


def _check_factor(value, name: str) -> float:
    value = check_real(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return value


class Schedule:
    """Base class: `initial_lr`, the current `epoch`, `step()`, `state_dict()` / `load_state_dict()`."""

    monitor: Optional[str] = None  # the log entry `step` needs (ReduceLROnPlateau only)

    def __init__(self, optimizer=None, initial_lr: Optional[float] = None) -> None:
        self.optimizer = None
        self.initial_lr = None if initial_lr is None else check_nonnegative(initial_lr, "initial_lr")
        self.epoch = 0
        if optimizer is not None:
            self.bind(optimizer)

    def bind(self, optimizer) -> None:
        """Makes `step` set `optimizer.lr`; initial_lr, if not given, becomes the optimizer's lr."""
        self.optimizer = optimizer
        if self.initial_lr is None:
            self.initial_lr = check_nonnegative(optimizer.lr, "optimizer.lr")

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self, metric: Optional[float] = None) -> float:
        """Ends the current epoch; returns (and sets on the optimizer, if any) the next epoch's lr."""
        if self.initial_lr is None:
            raise RuntimeError(f"{type(self).__name__} has no initial_lr: give it one or an optimizer")
        self.epoch += 1
        lr = self.lr_at(self.epoch)
        if self.optimizer is not None:
            self.optimizer.lr = lr
        return lr

    def state_dict(self) -> Dict[str, Union[float, int]]:
        return {"epoch": self.epoch, "initial_lr": self.initial_lr}

    def load_state_dict(self, state: Dict[str, Union[float, int]]) -> None:
        self.epoch = int(state["epoch"])
        self.initial_lr = float(state["initial_lr"])


class StepLR(Schedule):
    """lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer=None, *, step_size: int, gamma: float = 0.1, initial_lr: Optional[float] = None):
        super().__init__(optimizer, initial_lr)
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_nonnegative(gamma, "gamma")

    def lr_at(self, epoch: int) -> float:
        return self.initial_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(Schedule):
    """lr = initial_lr * gamma ** (number of milestones <= epoch): the lr drops at each milestone epoch."""

    def __init__(self, optimizer=None, *, milestones: Sequence[int], gamma: float = 0.1,
                 initial_lr: Optional[float] = None):
        super().__init__(optimizer, initial_lr)
        milestones = [check_positive_int(m, "milestones") for m in milestones]
        if milestones != sorted(set(milestones)):
            raise ValueError(f"milestones must be increasing, got {milestones!r}")
        self.milestones = milestones
        self.gamma = check_nonnegative(gamma, "gamma")

    def lr_at(self, epoch: int) -> float:
        return self.initial_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class InverseTimeDecay(Schedule):
    """lr = initial_lr / (1 + decay * epoch): the 1/k decay."""

    def __init__(self, optimizer=None, *, decay: float, initial_lr: Optional[float] = None):
        super().__init__(optimizer, initial_lr)
        self.decay = check_nonnegative(decay, "decay")

    def lr_at(self, epoch: int) -> float:
        return self.initial_lr / (1.0 + self.decay * epoch)


class CosineDecay(Schedule):
    """Linear warm-up, then a half cosine from initial_lr down to min_lr:

        epoch < warmup_epochs:  lr = initial_lr * (epoch + 1) / warmup_epochs
        afterwards:             lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * t)) / 2,
                                t = (epoch - warmup_epochs) / (total_epochs - warmup_epochs), clipped to 1
    so the last warm-up epoch and the first cosine epoch both run at initial_lr, and epochs from total_epochs
    on at min_lr.
    """

    def __init__(self, optimizer=None, *, total_epochs: int, warmup_epochs: int = 0, min_lr: float = 0.0,
                 initial_lr: Optional[float] = None):
        super().__init__(optimizer, initial_lr)
        self.total_epochs = check_positive_int(total_epochs, "total_epochs")
        self.warmup_epochs = int(check_nonnegative(warmup_epochs, "warmup_epochs"))
        if self.warmup_epochs >= self.total_epochs:
            raise ValueError(f"warmup_epochs must be < total_epochs={total_epochs}, got {warmup_epochs!r}")
        self.min_lr = check_nonnegative(min_lr, "min_lr")

    def lr_at(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return self.initial_lr * (epoch + 1) / self.warmup_epochs
        t = min(1.0, (epoch - self.warmup_epochs) / (self.total_epochs - self.warmup_epochs))
        return self.min_lr + (self.initial_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


class ReduceLROnPlateau(Schedule):
    """Multiplies the lr by `factor` (0.1: AlexNet's divide-by-ten) when `monitor` has not improved for more
    than `patience` epochs, never going below `min_lr`; then waits `cooldown` epochs before counting again.

    Improvement (threshold_mode 'rel'): metric < best * (1 - threshold) in mode 'min', metric > best *
    (1 + threshold) in mode 'max'; ('abs': best -/+ threshold). `step(metric)` takes the epoch's metric.
    """

    def __init__(self, optimizer=None, *, monitor: str = "val_loss", mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, initial_lr: Optional[float] = None):
        super().__init__(optimizer, initial_lr)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.monitor, self.mode, self.threshold_mode = monitor, mode, threshold_mode
        self.factor = _check_factor(factor, "factor")
        self.patience = int(check_nonnegative(patience, "patience"))
        self.threshold = check_nonnegative(threshold, "threshold")
        self.cooldown = int(check_nonnegative(cooldown, "cooldown"))
        self.min_lr = check_nonnegative(min_lr, "min_lr")
        self.reductions = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def lr_at(self, epoch: int) -> float:
        """The current lr, max(initial_lr * factor ** reductions, min_lr): it depends on the metrics seen so
        far, not on the epoch."""
        return max(self.initial_lr * self.factor ** self.reductions, self.min_lr)

    def _improves(self, metric: float) -> bool:
        if self.threshold_mode == "rel":
            bound = self.best * (1 - self.threshold) if self.mode == "min" else self.best * (1 + self.threshold)
        else:
            bound = self.best - self.threshold if self.mode == "min" else self.best + self.threshold
        return metric < bound if self.mode == "min" else metric > bound

    def step(self, metric: Optional[float] = None) -> float:
        if metric is None:
            raise ValueError(f"ReduceLROnPlateau.step needs the epoch's {self.monitor!r}, got None")
        metric = float(metric)
        if self._improves(metric):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            self.reductions += 1
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
        return super().step(metric)

    def state_dict(self):
        return {**super().state_dict(), "reductions": self.reductions, "best": self.best, "bad_epochs": self.bad_epochs,
                "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.reductions, self.best = int(state["reductions"]), float(state["best"])
        self.bad_epochs, self.cooldown_left = int(state["bad_epochs"]), int(state["cooldown_left"])


class ExponentialMovingAverage:
    """A shadow copy of the weights, averaged after each optimizer step, for evaluation:

        ema.update()      # after opt.step(): shadow = decay * shadow + (1 - decay) * value
        ema.apply()       # swap the averages into the parameters (evaluate, predict, save)
        ema.restore()     # swap the trained weights back, then keep training

    The shadow starts as a copy of the weights. Parameters are updated in place (`Parameter.assign`), so
    layers keep seeing the same arrays.
    """

    def __init__(self, params: Iterable[Parameter], decay: float = 0.999) -> None:
        self.params: List[Parameter] = list(params)
        self.decay = check_real(decay, "decay")
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay!r}")
        self.shadow = {p.name: p.value.copy() for p in self.params}
        self._backup: Optional[Dict[str, np.ndarray]] = None

    def update(self) -> None:
        for p in self.params:
            shadow = self.shadow[p.name]
            shadow *= self.decay
            shadow += (1.0 - self.decay) * p.value

    def apply(self) -> None:
        if self._backup is not None:
            raise RuntimeError("the averages are already applied: call restore() first")
        self._backup = {p.name: p.value.copy() for p in self.params}
        for p in self.params:
            p.assign(self.shadow[p.name])

    def restore(self) -> None:
        if self._backup is None:
            raise RuntimeError("restore() without apply()")
        for p in self.params:
            p.assign(self._backup[p.name])
        self._backup = None

    def state_dict(self) -> Dict[str, Union[np.ndarray, float]]:
        return {"decay": self.decay, **{f"{name}.shadow": v.copy() for name, v in self.shadow.items()}}

    def load_state_dict(self, state: Dict[str, Union[np.ndarray, float]]) -> None:
        self.decay = float(state["decay"])
        for p in self.params:
            self.shadow[p.name] = np.array(state[f"{p.name}.shadow"], dtype=p.value.dtype)
