"""Checks and conversions shared by the layers' constructors: configs must survive a JSON round trip."""
from __future__ import annotations

import numbers


def per_axis(value, rank: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or `rank` ints -> a tuple of `rank` ints >= minimum."""
    values = (value,) * rank if isinstance(value, numbers.Integral) else value
    if (not isinstance(values, (tuple, list)) or len(values) != rank or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum for v in values)):
        raise ValueError(f"{name} must be an int >= {minimum} or {rank} of them, got {value!r}")
    return tuple(int(v) for v in values)


def as_tuples(value):
    """Lists (what JSON gives back) -> tuples, recursively; everything else unchanged."""
    if isinstance(value, (list, tuple)):
        return tuple(as_tuples(v) for v in value)
    return value


def as_lists(value):
    """Tuples -> lists, recursively (JSON's form)."""
    if isinstance(value, (list, tuple)):
        return [as_lists(v) for v in value]
    return value
