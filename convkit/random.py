"""convkit's random numbers: seeded, reproducible and counter-based (Philox4x32-10, csrc/core/philox.h).

A `Generator` is a seed (the Philox key, 64 bits) and a counter of the 128-bit blocks it has handed out.
Every call that draws random values reserves the blocks it needs and advances the counter past them, so
consecutive calls differ; value i of a call depends only on (seed, counter at the call, i), so results are
the same for any thread count. `get_state()` / `set_state()` save and restore a generator for checkpoints:
training resumed from a saved state draws the same values, bit for bit.

Every function here and every random op in `convkit.ops` takes `generator=`: a `Generator`, or None for the
global one, which starts from seed 0 (runs are reproducible by default) and is reset by `seed(n)`.

How many blocks a call uses: each value takes one 32-bit word (float32, bool), or two (float64, int64
permutation keys); a block holds four words; a call of n values uses ceil(n * words / 4) blocks.
"""
from __future__ import annotations

import numbers
import secrets
import threading
from typing import Optional, Union

import numpy as np

from . import _C
from ._validate import FLOAT_DTYPES, check_real

ALGORITHM = "philox4x32-10"
_WORDS_PER_BLOCK = 4
_COUNTER_LIMIT = 2**64  # the block counter is 64 bits wide (the last block is left unused)

Shape = Union[int, tuple]


def _check_uint64(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value!r}")
    return int(value)


class Generator:
    """A seeded stream of random numbers. Generator(seed) with seed an int in [0, 2**64); Generator() seeds
    itself from the operating system's entropy (read `.seed` back to reproduce the run).

    Safe to share between Python threads: each call reserves its own blocks under a lock. Picklable (it
    pickles its state).
    """

    __slots__ = ("_seed", "_counter", "_lock")

    def __init__(self, seed: Optional[int] = None) -> None:
        self._lock = threading.Lock()
        self._seed = secrets.randbits(64) if seed is None else _check_uint64(seed, "seed")
        self._counter = 0

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def counter(self) -> int:
        """The number of 128-bit blocks handed out so far."""
        return self._counter

    def get_state(self) -> dict:
        """{'algorithm': 'philox4x32-10', 'seed': int, 'counter': int}: plain ints, JSON-serialisable."""
        with self._lock:
            return {"algorithm": ALGORITHM, "seed": self._seed, "counter": self._counter}

    def set_state(self, state: dict) -> None:
        """Restore a state from get_state(); the next draws repeat those made after it was saved."""
        if not isinstance(state, dict) or set(state) != {"algorithm", "seed", "counter"}:
            raise ValueError(f"state must be a dict with keys 'algorithm', 'seed', 'counter' (from get_state()), "
                             f"got {state!r}")
        if state["algorithm"] != ALGORITHM:
            raise ValueError(f"state['algorithm'] must be {ALGORITHM!r}, got {state['algorithm']!r}")
        seed = _check_uint64(state["seed"], "state['seed']")
        counter = _check_uint64(state["counter"], "state['counter']")
        with self._lock:
            self._seed, self._counter = seed, counter

    def reserve(self, values: int, words_per_value: int) -> tuple[int, int]:
        """(seed, first block) for a call that draws `values` values of `words_per_value` 32-bit words each;
        the counter moves past the blocks they fill. For the ops that draw random numbers."""
        blocks = -(-values * words_per_value // _WORDS_PER_BLOCK)
        with self._lock:
            first = self._counter
            if first + blocks >= _COUNTER_LIMIT:  # >=: the counter, saved in a state, stays below 2**64
                raise OverflowError(f"generator exhausted: counter {first} + {blocks} blocks passes 2**64; reseed it")
            self._counter = first + blocks
        return self._seed, first

    def __getstate__(self) -> dict:
        return self.get_state()

    def __setstate__(self, state: dict) -> None:
        self._lock = threading.Lock()
        self.set_state(state)

    def __repr__(self) -> str:
        return f"Generator(seed={self._seed}, counter={self._counter})"


_global = Generator(0)


def global_generator() -> Generator:
    """The generator used when an op is given generator=None."""
    return _global


def resolve(generator: Optional[Generator]) -> Generator:
    """The generator a call uses: `generator`, or the global one for None."""
    if generator is None:
        return _global
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a convkit.random.Generator or None, got {generator!r}")
    return generator


def seed(n: int) -> None:
    """Reset the global generator to seed n (an int in [0, 2**64)) and counter 0, and restart the weight
    initialisers' stream from n too (convkit.initializers.set_seed): one call makes a whole run repeatable."""
    from . import initializers

    _global.set_state({"algorithm": ALGORITHM, "seed": _check_uint64(n, "n"), "counter": 0})
    initializers.set_seed(n)


def get_state() -> dict:
    """The global generator's state (see Generator.get_state)."""
    return _global.get_state()


def set_state(state: dict) -> None:
    """Restore the global generator's state (see Generator.set_state)."""
    _global.set_state(state)


def words_per_value(dtype: np.dtype) -> int:
    """32-bit random words one value of `dtype` takes: 2 for 8-byte values, else 1."""
    return max(1, np.dtype(dtype).itemsize // 4)


def _check_shape(shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) for d in shape):
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}")
    if any(d < 0 for d in shape):
        raise ValueError(f"shape must not have negative sizes, got {shape!r}")
    return tuple(int(d) for d in shape)


def _check_float_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return dtype


def _draw(fill, shape, dtype, generator: Optional[Generator], *args) -> np.ndarray:
    """A new array of shape and dtype, filled by _C.random_*(seed, first_block, out, *args)."""
    out = np.empty(shape, dtype=dtype)
    seed_, first = resolve(generator).reserve(out.size, words_per_value(out.dtype))
    fill(seed_, first, out, *args)
    return out


def uniform(shape: Shape, dtype=np.float32, *, low: float = 0.0, high: float = 1.0,
            generator: Optional[Generator] = None) -> np.ndarray:
    """Uniform values in [low, high), an array of `shape` and `dtype` (float32 or float64).

    With the default bounds the values are the multiples of 2**-24 (float32) or 2**-53 (float64) in [0, 1),
    each equally likely; other bounds compute low + (high - low) * u in float64 and round once, which can
    round up to `high`.
    """
    shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
    low, high = check_real(low, "low"), check_real(high, "high")
    if not low < high:
        raise ValueError(f"low must be less than high, got low={low!r}, high={high!r}")
    return _draw(_C.random_uniform, shape, dtype, generator, low, high)


def normal(shape: Shape, dtype=np.float32, *, mean: float = 0.0, std: float = 1.0,
           generator: Optional[Generator] = None) -> np.ndarray:
    """Normal values of `mean` and `std`, an array of `shape` and `dtype` (float32 or float64).

    Box-Muller on the generator's uniforms, computed in float64: values 2k and 2k+1 of the flattened array
    are the cosine and sine of one pair. Tails reach about 6.8 std (float32) and 8.7 std (float64).
    """
    shape, dtype = _check_shape(shape), _check_float_dtype(dtype)
    mean, std = check_real(mean, "mean"), check_real(std, "std")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    return _draw(_C.random_normal, shape, dtype, generator, mean, std)


def bernoulli(shape: Shape, p: float = 0.5, *, generator: Optional[Generator] = None) -> np.ndarray:
    """A bool array of `shape`, each element True with probability p in [0, 1] (to within 2**-32)."""
    shape = _check_shape(shape)
    p = check_real(p, "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    return _draw(_C.random_bernoulli, shape, np.bool_, generator, p)


def permutation(n: int, *, generator: Optional[Generator] = None) -> np.ndarray:
    """A random permutation of range(n), int64: the order that sorts n random 64-bit keys (a stable sort,
    so the result is fully determined even in the astronomically rare case of equal keys)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    keys = _draw(_C.random_bits, (int(n),), np.uint64, generator)
    return np.argsort(keys, kind="stable").astype(np.int64, copy=False)


def shuffle(x: np.ndarray, *, generator: Optional[Generator] = None) -> None:
    """Shuffle the writeable array x in place along its first axis (x[...] = x[permutation(len(x))])."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array (it is shuffled in place), got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d array")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is shuffled in place")
    x[...] = x[permutation(x.shape[0], generator=generator)]
