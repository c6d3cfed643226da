"""Argument checks shared by the public API. Every failure names the argument and the value it got."""
from __future__ import annotations

import functools
import math
import numbers
import os
import reprlib
from typing import Callable, Union

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# repr for error messages, cut short: a value nested thousands deep (((1, 2), 2), 2)... has no repr at all
# (RecursionError), and a huge one would flood the message.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 4
_SHORT_REPR.maxtuple = _SHORT_REPR.maxlist = _SHORT_REPR.maxdict = 10
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 120


def shown(value) -> str:
    """repr(value) for an error message: the same for ordinary values, abbreviated with '...' past 4 levels
    of nesting, 10 items or 120 characters."""
    return _SHORT_REPR.repr(value)


def as_float_array(value, name: str) -> np.ndarray:
    """`value` as a float32/float64 ndarray in native byte order, with strides the kernels can walk.

    Non-contiguous arrays are accepted as they are (the kernels take strides); only arrays whose strides
    are not whole elements, or that are byte-swapped, are copied.
    """
    arr = np.asarray(value)
    if arr.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}; "
            f"convert it first, e.g. {name}.astype(np.float32)"
        )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if any(s % arr.itemsize for s in arr.strides):
        arr = np.ascontiguousarray(arr)
    return arr


def common_float_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 if any operand is float64, else float32 (NumPy's promotion among the two)."""
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def check_real(value, name: str) -> float:
    """A finite real number (bool is refused: it is almost always a misplaced flag)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {shown(value)}")
    return value


def check_nonnegative(value, name: str) -> float:
    """A real number >= 0 (learning rates, decays, momenta)."""
    value = check_real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {shown(value)}")
    return value


def check_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {shown(value)}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {shown(value)}")
    return int(value)


INT64_MAX = 2**63 - 1


@functools.lru_cache(maxsize=None)  # two sysconf calls cost ~7 us, and every op's output asks
def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: only the int64 bound applies
        return INT64_MAX


def check_output_size(shape: tuple, itemsize: int, what: Union[str, Callable[[], str]]) -> None:
    """Refuse an output whose size cannot exist, before anything is computed or allocated for it: more
    elements than int64 counts (ValueError), or more bytes than int64 counts or the machine's physical
    memory holds (MemoryError). Names `what` and the shape; `what` may be a function making the name, so
    that a costly description is formatted only for an error."""
    elements = math.prod(shape)
    if elements > INT64_MAX:
        raise ValueError(f"{_described(what)} of shape {shape} would have {elements} elements, more than int64 "
                         "can count")
    needed, memory = elements * itemsize, _physical_memory()
    if needed > min(INT64_MAX, memory):
        raise MemoryError(f"{_described(what)} of shape {shape} would need {needed} bytes, more than "
                          f"{'int64 can count' if needed > INT64_MAX else f'the {memory} bytes of memory here'}")


def _described(what: Union[str, Callable[[], str]]) -> str:
    return what() if callable(what) else what


def empty_output(shape: tuple, dtype: np.dtype, what: Union[str, Callable[[], str]]) -> np.ndarray:
    """np.empty(shape, dtype) after check_output_size."""
    check_output_size(shape, dtype.itemsize, what)
    return np.empty(shape, dtype=dtype)
