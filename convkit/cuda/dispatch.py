"""Device dispatch for the functional ops: an op given a convkit.Tensor runs its CUDA implementation.

convkit.ops wraps each public op with `with_device_dispatch` (convkit/ops/__init__.py). Without a Tensor
among the arguments the wrapper only looks at them (well under a microsecond) and calls the NumPy op;
with one, every array operand must be a Tensor (a host array beside a Tensor raises ValueError, naming both),
and the op of the same name in convkit/cuda/_ops.py runs. Ops without one raise NotImplementedError.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np

from .tensor import Tensor


def _has_tensor(args: tuple, kwargs: dict) -> bool:
    # Plain loops: this runs on every host op call, and generator expressions cost a microsecond more.
    for value in args:
        if type(value) is Tensor:
            return True
    for value in kwargs.values():
        if type(value) is Tensor:
            return True
    return False


def operand_devices(bound: inspect.BoundArguments) -> tuple[list[str], list[str]]:
    """(names of the Tensor arguments, names and types of the host-array arguments) of one call."""
    on_device, on_host = [], []
    for name, value in bound.arguments.items():
        values = value.values() if isinstance(value, dict) else (value,)  # **options
        for v in values:
            if isinstance(v, Tensor):
                on_device.append(name)
            elif isinstance(v, np.ndarray):
                on_host.append(f"{name} ({type(v).__module__}.{type(v).__name__})")
    return on_device, on_host


def check_one_device(op_name: str, bound: inspect.BoundArguments) -> None:
    on_device, on_host = operand_devices(bound)
    if on_device and on_host:
        raise ValueError(f"convkit op '{op_name}' got operands on cuda ({', '.join(on_device)}) and on the host "
                         f"({', '.join(on_host)}); move them to one device with convkit.to_device(x, 'cuda') "
                         "or tensor.numpy()")


def device_implementation(op_name: str) -> Callable:
    from . import _ops  # imported on the first device call: importing convkit.ops needs no CUDA

    implementation = getattr(_ops, op_name, None)
    if implementation is None:
        raise NotImplementedError(f"convkit op '{op_name}' has no CUDA implementation; run it on the host "
                                  "(tensor.numpy()) or see the README's 'CUDA backend' for the ops that have one")
    return implementation


def with_device_dispatch(op: Callable) -> Callable:
    """`op`, running its CUDA implementation when an argument is a Tensor."""
    signature = inspect.signature(op)

    @functools.wraps(op)
    def dispatching(*args, **kwargs):
        if not _has_tensor(args, kwargs):
            return op(*args, **kwargs)
        check_one_device(op.__name__, signature.bind(*args, **kwargs))
        return device_implementation(op.__name__)(*args, **kwargs)

    return dispatching
