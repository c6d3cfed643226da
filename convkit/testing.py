"""check_gradients: float64 central finite differences of a layer or network against its backward pass."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass
class GradientEntry:
    """The worst-checked element of one array: which, where, analytic vs numeric, and the error ratio
    |analytic - numeric| / (atol + rtol * |numeric|) (<= 1 passes)."""

    name: str
    index: tuple
    analytic: float
    numeric: float
    ratio: float

    def __str__(self) -> str:
        return (f"{self.name}{list(self.index)}: backward {self.analytic:.10g}, finite differences "
                f"{self.numeric:.10g} (error {self.ratio:.3g} x tolerance)")


@dataclass
class GradientReport:
    entries: list  # one GradientEntry per checked array: the inputs, then every trainable parameter
    checked: int   # elements compared

    @property
    def worst(self) -> GradientEntry:
        return max(self.entries, key=lambda e: e.ratio)

    @property
    def passed(self) -> bool:
        return all(e.ratio <= 1.0 for e in self.entries)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.entries)


@contextlib.contextmanager
def _in_float64(params):
    """Run with every parameter (state included) as float64; afterwards the original arrays are put back,
    untouched (state updates and gradients made during the check are discarded)."""
    saved = [(p.value, p.grad) for p in params]
    try:
        for p in params:
            p.value = p.value.astype(np.float64)
            p.grad = np.zeros_like(p.value)
        yield
    finally:
        for p, (value, grad) in zip(params, saved):
            p.value, p.grad = value, grad


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def central_difference(f: Callable[[], float], array: np.ndarray, index: tuple, eps: float) -> float:
    """(f() with array[index] + eps  -  f() with array[index] - eps) / (2 eps), the derivative of the scalar
    f() with respect to one element of `array`, which is perturbed in place and restored."""
    saved = array[index]
    array[index] = saved + eps
    up = f()
    array[index] = saved - eps
    down = f()
    array[index] = saved
    return (up - down) / (2 * eps)


def check_gradients(layer_or_model, x, *, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5,
                    max_checks: Optional[int] = 40, seed: int = 0) -> GradientReport:
    """Compare backward with central differences (f(p + eps) - f(p - eps)) / 2 eps, in float64.

    The loss is sum(dy * forward(x, training=True)) for a fixed random dy. Checked: every input array and every
    trainable parameter, at up to max_checks random elements each (None: all). Parameters are swapped to
    float64 copies for the check and restored afterwards. Returns a GradientReport; raises AssertionError
    naming the worst element when any |analytic - numeric| > atol + rtol * |numeric|.
    """
    rng = np.random.default_rng(seed)
    single = not isinstance(x, (list, tuple))
    xs = [np.array(a, dtype=np.float64) for a in _as_list(x)]
    layer_or_model.forward(xs[0] if single else xs, False)  # builds it, so that its parameters exist
    params = layer_or_model.parameters()

    def run(training=True):
        return layer_or_model.forward(xs[0] if single else xs, training)

    with _in_float64(params):
        first = run()
        single_output = not isinstance(first, (list, tuple))
        dys = [rng.standard_normal(np.shape(y)) for y in _as_list(first)]

        def loss() -> float:
            return float(sum(np.sum(dy * y) for dy, y in zip(dys, _as_list(run()))))

        for p in params:
            p.grad[...] = 0
        run()
        dxs = _as_list(layer_or_model.backward(dys[0] if single_output else dys))
        targets = [(f"x[{i}]" if not single else "x", a, np.asarray(g)) for i, (a, g) in enumerate(zip(xs, dxs))]
        targets += [(p.name, p.value, p.grad.copy()) for p in params if p.trainable]
        entries, checked = [], 0
        for name, array, analytic in targets:
            count = array.size if max_checks is None else min(max_checks, array.size)
            flat = rng.choice(array.size, count, replace=False)
            worst = GradientEntry(name, (), 0.0, 0.0, -1.0)
            for i in flat:
                index = np.unravel_index(i, array.shape)
                numeric = central_difference(loss, array, index, eps)
                ratio = abs(analytic[index] - numeric) / (atol + rtol * abs(numeric))
                if ratio > worst.ratio:
                    worst = GradientEntry(name, tuple(int(j) for j in index), float(analytic[index]), numeric, ratio)
            checked += count
            entries.append(worst)
    report = GradientReport(entries, checked)
    if not report.passed:
        raise AssertionError(f"gradient check failed at {report.worst}\n{report}")
    return report
