"""Optimizers: SGD (momentum, Nesterov, weight decay, dampening), Adam and AdamW, with PyTorch's update rules.

Each step is one fused C++ call per parameter group and dtype (csrc/ops/optim.h), updating `Parameter.value`
in place with the GIL released. Two ways to use them:

    opt = SGD(lr=0.1, momentum=0.9)          # Keras style: model.compile(optimizer=opt) calls opt.bind(params)
    opt = SGD(model.parameters(), lr=0.1)    # PyTorch style: opt.zero_grad(); ...backward...; opt.step()

`params` is a list of `Parameter`s or a list of parameter groups, dicts `{'params': [...], **options}` whose
options override the optimizer's defaults for that group (`param_groups_by_decay` builds the usual two).
Frozen parameters (`trainable=False`) are skipped and stay bit-identical.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np

from . import _C
from ._validate import check_bool, check_nonnegative, check_real
from .parameter import Parameter

ParamsOrGroups = Union[Iterable[Parameter], Iterable[Dict[str, Any]]]
StateDict = Dict[str, Union[np.ndarray, float, int]]


def param_groups_by_decay(params: Iterable[Parameter], weight_decay: float) -> List[Dict[str, Any]]:
    """The conventional two groups: `weight_decay` on parameters with `decay=True` (kernels), none on the rest
    (biases, normalization scales and shifts). Empty groups are left out."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.decay], "weight_decay": weight_decay},
        {"params": [p for p in params if not p.decay], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _check_fraction(value, name: str) -> float:
    value = check_real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


class Optimizer:
    """Parameter groups, binding, zero_grad, the learning rate and state_dict; subclasses define `_step_group`.

    `defaults` maps each hyperparameter to its value; `_checks` maps it to the function that validates it.
    State (momentum buffers, moments, step counts) is kept per parameter, keyed by the parameter's name.
    """

    _checks: Dict[str, Any] = {}

    def __init__(self, params: Optional[ParamsOrGroups], defaults: Dict[str, Any]) -> None:
        self.defaults = self._check_options(defaults, "")
        self._check_group(self.defaults, "")
        self.param_groups: List[Dict[str, Any]] = []
        self.state: Dict[str, Dict[str, Any]] = {}
        self.iterations = 0  # steps taken
        if params is not None:
            self.bind(params)

    def _check_options(self, options: Dict[str, Any], where: str) -> Dict[str, Any]:
        checked = {}
        for key, value in options.items():
            if key not in self._checks:
                raise ValueError(f"{where}unknown option {key!r} for {type(self).__name__}; "
                                 f"known: {sorted(self._checks)}")
            checked[key] = self._checks[key](value, key)
        return checked

    def _check_group(self, group: Dict[str, Any], where: str) -> None:
        """Checks that a group's options (defaults merged with its own) make sense together."""

    def bind(self, params: ParamsOrGroups) -> "Optimizer":
        """Sets the parameters to optimize (replacing any bound before): Parameters or group dicts."""
        params = list(params)
        if not params:
            raise ValueError("params is empty: there is nothing to optimize")
        raw_groups = params if isinstance(params[0], dict) else [{"params": params}]
        groups, seen = [], {}
        for index, raw in enumerate(raw_groups):
            if not isinstance(raw, dict) or "params" not in raw:
                raise TypeError(f"param group {index} must be a dict with a 'params' list, got {raw!r}")
            members = list(raw["params"])
            for p in members:
                if not isinstance(p, Parameter):
                    raise TypeError(f"param group {index}: expected convkit.Parameter, got {type(p).__name__}")
                if p.name in seen and seen[p.name] is not p:
                    raise ValueError(f"two parameters are named {p.name!r}: state is keyed by name, names must differ")
                if p.name in seen:
                    raise ValueError(f"parameter {p.name!r} is listed twice")
                seen[p.name] = p
            options = self._check_options({k: v for k, v in raw.items() if k != "params"}, f"param group {index}: ")
            group = {**self.defaults, **options, "params": members}
            self._check_group(group, f"param group {index}: ")
            groups.append(group)
        self.param_groups = groups
        default_lr = self.defaults["lr"]
        for group in groups:  # a group's lr keeps its ratio to the default when `lr` is set (schedules)
            group["lr_scale"] = group["lr"] / default_lr if default_lr else 1.0
        self.state = {name: state for name, state in self.state.items() if name in seen}
        return self

    def parameters(self) -> List[Parameter]:
        """Every bound parameter, group by group."""
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def lr(self) -> float:
        """The default learning rate. Setting it sets every group's lr to `value * lr_scale`, where lr_scale is
        the ratio of the group's lr to the default one when the groups were bound (1 for most groups)."""
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_nonnegative(value, "lr")
        self.defaults["lr"] = value
        for group in self.param_groups:
            group["lr"] = value * group["lr_scale"]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def step(self) -> None:
        """One update of every trainable parameter from its `.grad`."""
        if not self.param_groups:
            raise RuntimeError(f"{type(self).__name__} has no parameters: pass them to the constructor or bind()")
        self.iterations += 1
        for group in self.param_groups:
            trainable = [p for p in group["params"] if p.trainable]
            for dtype in (np.float32, np.float64):  # one fused call per dtype present in the group
                same_dtype = [p for p in trainable if p.value.dtype == dtype]
                if same_dtype:
                    self._step_group(group, same_dtype)

    def _step_group(self, group: Dict[str, Any], params: List[Parameter]) -> None:
        raise NotImplementedError

    def _buffer(self, p: Parameter, name: str) -> np.ndarray:
        state = self.state.setdefault(p.name, {})
        if name not in state:
            state[name] = np.zeros_like(p.value)
        return state[name]

    # ---- checkpoints -------------------------------------------------------------------------------------

    def state_dict(self) -> StateDict:
        """A flat dict of arrays, floats and ints: 'iterations', 'defaults.{option}', 'group.{i}.{option}' per
        group (bools as ints, Adam's betas as an array), and 'state.{parameter name}.{item}' for each
        parameter's state ('momentum_buffer'; 'exp_avg', 'exp_avg_sq', 'step'). Arrays are copies."""
        out: StateDict = {"iterations": self.iterations}
        for key, value in self.defaults.items():
            out[f"defaults.{key}"] = _plain(value)
        for i, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    out[f"group.{i}.{key}"] = _plain(value)
        for name, state in self.state.items():
            for key, value in state.items():
                out[f"state.{name}.{key}"] = value.copy() if isinstance(value, np.ndarray) else value
        return out

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Restores what `state_dict` saved, into the bound parameters: the next step is bit-identical to the
        one the saved optimizer would have taken."""
        if not self.param_groups:
            raise RuntimeError("bind the parameters before loading optimizer state")
        state_dict = dict(state_dict)
        self.iterations = int(state_dict.pop("iterations", 0))
        by_name = {p.name: p for p in self.parameters()}
        new_state: Dict[str, Dict[str, Any]] = {}
        for key, value in state_dict.items():
            if key.startswith("defaults."):
                self.defaults[key[len("defaults."):]] = _restore(value)
                continue
            if key.startswith("group."):
                _, index, option = key.split(".", 2)
                if int(index) >= len(self.param_groups):
                    raise ValueError(f"state_dict has {key!r} but the optimizer has {len(self.param_groups)} groups")
                self.param_groups[int(index)][option] = _restore(value)
                continue
            if not key.startswith("state."):
                raise ValueError(f"state_dict has an unknown key {key!r}")
            name, _, item = key[len("state."):].rpartition(".")  # a parameter's name may contain dots
            if name not in by_name:
                raise ValueError(f"state_dict has state for parameter {name!r}, which is not bound")
            p = by_name[name]
            if isinstance(value, np.ndarray) and value.ndim == 0:  # a step count, as np.load returns it
                value = value.item()
            if isinstance(value, np.ndarray):
                if value.shape != p.value.shape:
                    raise ValueError(f"state_dict {key!r} has shape {value.shape}, parameter {name!r} {p.value.shape}")
                value = np.array(value, dtype=p.value.dtype, order="C")
            new_state.setdefault(name, {})[item] = value
        self.state = new_state


def _plain(value):
    """An option as the flat state dict holds it: bools as ints, tuples (Adam's betas) as float64 arrays."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return np.array(value, dtype=np.float64) if isinstance(value, tuple) else value


def _restore(value):
    """The inverse of _plain (an int stays an int: the options that take bools accept 0 and 1 alike)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, PyTorch's rule (per element, g the gradient, p the weight):

        g += weight_decay * p
        v = g on a parameter's first step, then v = momentum * v + (1 - dampening) * g
        p -= lr * v                      (nesterov: p -= lr * (g + momentum * v))

    As in PyTorch, dampening does not apply to the first step (the buffer starts as g itself). momentum=0 keeps
    no buffer: p -= lr * g. Nesterov needs momentum > 0 and dampening = 0.
    """

    _checks = {"lr": check_nonnegative, "momentum": check_nonnegative, "dampening": check_nonnegative,
               "weight_decay": check_nonnegative, "nesterov": check_bool}

    def __init__(self, params: Optional[ParamsOrGroups] = None, lr: float = 0.01, momentum: float = 0.9,
                 nesterov: bool = False, weight_decay: float = 0.0, dampening: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                      dampening=dampening))

    def _check_group(self, group, where):
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where}nesterov needs momentum > 0 and dampening = 0, got momentum="
                             f"{group['momentum']!r}, dampening={group['dampening']!r}")

    def _step_group(self, group, params):
        momentum = group["momentum"] != 0
        first_step = [momentum and "momentum_buffer" not in self.state.get(p.name, {}) for p in params]
        velocities = [self._buffer(p, "momentum_buffer") for p in params] if momentum else []
        _C.sgd_step([p.value for p in params], [p.grad for p in params], velocities, first_step, lr=group["lr"],
                    momentum=group["momentum"], dampening=group["dampening"],
                    weight_decay=group["weight_decay"], nesterov=bool(group["nesterov"]))


def _check_betas(value, name: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    return (_check_fraction(value[0], f"{name}[0]"), _check_fraction(value[1], f"{name}[1]"))


class Adam(Optimizer):
    """Adam, PyTorch's rule with bias correction (t: the parameter's step count, from 1):

        g += weight_decay * p                           (L2 penalty; AdamW decays the weights instead)
        m = beta1 * m + (1 - beta1) * g;  s = beta2 * s + (1 - beta2) * g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(s) / sqrt(1 - beta2^t) + eps)
    """

    _checks = {"lr": check_nonnegative, "betas": _check_betas, "eps": check_nonnegative,
               "weight_decay": check_nonnegative}
    _decoupled = False

    def __init__(self, params: Optional[ParamsOrGroups] = None, lr: float = 0.001, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _step_group(self, group, params):
        steps = []
        for p in params:
            state = self.state.setdefault(p.name, {})
            state["step"] = int(state.get("step", 0)) + 1
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        _C.adam_step([p.value for p in params], [p.grad for p in params],
                     [self._buffer(p, "exp_avg") for p in params], [self._buffer(p, "exp_avg_sq") for p in params],
                     steps, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"], decoupled_weight_decay=self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's rule: p *= 1 - lr * weight_decay
    before the Adam update, which then uses the plain gradient. Default weight_decay=0.01, as PyTorch."""

    _decoupled = True

    def __init__(self, params: Optional[ParamsOrGroups] = None, lr: float = 0.001, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(optimizer: Union[str, Optimizer]) -> Optimizer:
    """An optimizer by name ('sgd', 'adam', 'adamw', with default options) or the object itself."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or an Optimizer, got {optimizer!r}")
