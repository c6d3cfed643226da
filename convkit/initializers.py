"""Weight initialisers, by name or object: glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal,
zeros, ones, constant(value).

Fans follow Keras: a kernel of shape (*kernel_size, fan_in_channels, fan_out_channels) has
fan_in = prod(kernel_size) * shape[-2] and fan_out = prod(kernel_size) * shape[-1] (a Dense kernel
(in, out) is the case kernel_size = ()); a vector of shape (n,) has fan_in = fan_out = n.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np

_seed = 0
_generator = np.random.default_rng(_seed)


def set_seed(seed: int) -> None:
    """Restart the random stream every random initialiser draws from."""
    global _seed, _generator
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)


def random_source() -> np.random.Generator:
    """The one place initialisers get randomness from (to be switched to convkit.random's counter-based RNG)."""
    return _generator


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape` (see the module docstring)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return receptive_field * shape[-2], receptive_field * shape[-1]


class Initializer:
    """Callable (shape, dtype) -> a new array. Subclasses registered in INITIALIZERS are loadable by name."""

    name = "initializer"

    def __call__(self, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _VarianceScaling(Initializer):
    """Uniform or normal with variance scale / fan, fan being fan_in, fan_out or their mean."""

    scale = 1.0
    fan = "fan_in"
    distribution = "normal"

    def __call__(self, shape, dtype=np.float32):
        fan_in, fan_out = compute_fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.fan]
        variance = self.scale / max(1.0, fan)
        rng, dtype = random_source(), np.dtype(dtype)
        # Drawn in the target dtype: no float64 temporary the size of a VGG-16 dense kernel.
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = rng.random(shape, dtype=dtype)
            values *= 2 * limit
            values -= limit
            return values
        values = rng.standard_normal(shape, dtype=dtype)
        values *= math.sqrt(variance)
        return values


class GlorotUniform(_VarianceScaling):
    name, fan, distribution = "glorot_uniform", "fan_avg", "uniform"


class GlorotNormal(_VarianceScaling):
    name, fan, distribution = "glorot_normal", "fan_avg", "normal"


class HeUniform(_VarianceScaling):
    name, scale, distribution = "he_uniform", 2.0, "uniform"


class HeNormal(_VarianceScaling):
    name, scale, distribution = "he_normal", 2.0, "normal"


class LecunNormal(_VarianceScaling):
    name = "lecun_normal"


class Constant(Initializer):
    name = "constant"

    def __init__(self, value: float = 0.0) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"constant value must be a real number, got {value!r}")
        self.value = float(value)

    def __call__(self, shape, dtype=np.float32):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self) -> dict:
        return {"value": self.value}


class Zeros(Constant):
    name = "zeros"

    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict:
        return {}


class Ones(Constant):
    name = "ones"

    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict:
        return {}


INITIALIZERS = {cls.name: cls for cls in (GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunNormal, Zeros,
                                          Ones, Constant)}


def constant(value: float) -> Constant:
    return Constant(value)


def get(identifier: Union[str, dict, Initializer]) -> Initializer:
    """An initialiser from its name ('he_normal'), its serialized form, or itself."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in INITIALIZERS:
        return INITIALIZERS[identifier]()
    raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(INITIALIZERS)} (or an Initializer object)")


def serialize(initializer: Initializer) -> Union[str, dict]:
    """The name of a parameterless initialiser, else {'class_name': name, 'config': {...}} (JSON-ready)."""
    config = initializer.get_config()
    return {"class_name": initializer.name, "config": config} if config else initializer.name


def deserialize(config: Union[str, dict]) -> Initializer:
    if isinstance(config, str):
        return get(config)
    name = config.get("class_name")
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; known: {sorted(INITIALIZERS)}")
    return INITIALIZERS[name](**config.get("config", {}))
