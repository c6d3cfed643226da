"""Layer: the base class of every layer, and the contract a layer (built-in or plugin) follows.

Shapes given to and returned by build / compute_output_shape / flops EXCLUDE the batch axis (Keras style):
a Conv2D on x of shape (N, 28, 28, 1) is built with input_shape (28, 28, 1).

Contract of a subclass:
- __init__(config..., **kwargs): store the configuration only, pass **kwargs (name, trainable, dtype,
  input_shape) to super().__init__. get_config() returns every __init__ argument (JSON-ready).
- build(input_shape): create Parameters with add_weight / add_state (called once, before the first forward).
- forward(x, training): compute y. When training is True, keep what backward needs with
  save_for_backward(...), and nothing anywhere else on self (a layer called twice in a graph gets its own
  saved values back for each call).
- backward(dy): return dx (never modify dy in place: it may be shared), and ADD (+=) the parameter gradients
  to Parameter.grad through accumulate() (the network zeroes them; adding makes shared weights and fan-out
  correct). Frozen parameters are skipped by accumulate(); a layer may also test self.trainable to skip
  computing them.
- compute_output_shape(input_shape), and optionally flops(input_shape) for summary().
Layers taking several inputs (Add, Concatenate) set multi_input = True: they get a list of arrays (shapes)
and their backward returns a list of gradients.

Threads: forward(x, training=False) mutates nothing shared (call depths are per thread, building is locked),
so several threads may run inference on one model at once. Training one model from several threads at once
is not supported: save_for_backward keeps one call's values on the layer.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import re
import threading
from typing import Callable, Iterator, Optional, Union

import numpy as np

from .. import anomaly, initializers
from .._validate import as_float_array, check_bool
from ..parameter import Parameter
from ..symbolic import Node, SymbolicTensor, is_symbolic

Shape = tuple[int, ...]
ShapeOrShapes = Union[Shape, list[Shape]]

_name_counts: collections.Counter = collections.Counter()
_build_lock = threading.RLock()  # RLock: a wrapper layer (Dropout around a layer) builds its inner layer


class _CallDepths(threading.local):
    """How deep each layer is in its own forward / backward, per thread ({id(layer): depth}): the outermost
    call validates and builds, and calls of one shared model from several threads (predict) do not see each
    other's depths."""

    def __init__(self) -> None:
        self.forward: dict[int, int] = {}
        self.backward: dict[int, int] = {}


_depths = _CallDepths()

# Called with the full name and shape of every weight a layer declares, before it is allocated, while
# convkit.saving builds a model from a checkpoint: a forged architecture (Dense(10**9)) then fails on the
# shapes the file stores instead of first allocating the declared ones.
_declared_weight_check: contextvars.ContextVar[Optional[Callable[[str, tuple], None]]] = contextvars.ContextVar(
    "declared_weight_check", default=None)


@contextlib.contextmanager
def checking_declared_weights(check: Callable[[str, tuple], None]) -> Iterator[None]:
    """Within the block, layers call check(name, shape) (it may raise) before allocating each weight."""
    token = _declared_weight_check.set(check)
    try:
        yield
    finally:
        _declared_weight_check.reset(token)


def _default_name(cls: type) -> str:
    """'conv2d_1', 'conv2d_2', 'batch_normalization_1', ... (unique in the process)."""
    base = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls.__name__)
    base = re.sub(r"([a-z])([A-Z])", r"\1_\2", base).lower()
    _name_counts[base] += 1
    return f"{base}_{_name_counts[base]}"


def check_shape(shape, name: str = "input_shape") -> Shape:
    """A shape without the batch axis: a tuple of positive ints."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(f"{name} must be a tuple of positive ints (without the batch axis), got {shape!r}")
    return tuple(int(n) for n in shape)


@contextlib.contextmanager
def _one_call_deeper(depths: dict[int, int], layer: "Layer") -> Iterator[bool]:
    """Counts one more call of layer in depths for the block; yields whether it is the outermost one."""
    depth = depths.get(id(layer), 0)
    depths[id(layer)] = depth + 1
    try:
        yield depth == 0
    finally:
        if depth:
            depths[id(layer)] = depth
        else:
            del depths[id(layer)]


def _wrap_forward(forward):
    """Build on first use, validate `training`, forget the previous call's saved values; in anomaly mode, check
    the output."""
    @functools.wraps(forward)
    def wrapped(self, x, training: bool = False):
        with _one_call_deeper(_depths.forward, self) as outermost:
            if not outermost:
                return forward(self, x, training)
            training = check_bool(training, "training")
            x = [as_float_array(a, f"x[{i}]") for i, a in enumerate(x)] if self.multi_input else as_float_array(x, "x")
            if not self.built:
                self.build_once([a.shape[1:] for a in x] if self.multi_input else x.shape[1:])
            self._saved = None
            y = forward(self, x, training)
            if anomaly.is_anomaly_detection_enabled():
                anomaly.check_forward(self, x, y)
            return y

    return wrapped


def _wrap_backward(backward):
    """Free the saved values once the gradient is taken (a second backward needs a new forward); in anomaly
    mode, check the gradients."""
    @functools.wraps(backward)
    def wrapped(self, dy):
        with _one_call_deeper(_depths.backward, self) as outermost:
            if not outermost:
                return backward(self, dy)
            try:
                dx = backward(self, dy)
            finally:
                self._saved = None
            if anomaly.is_anomaly_detection_enabled():
                anomaly.check_backward(self, dy, dx)
            return dx

    return wrapped


class Layer:
    """Base class of layers. See the module docstring for the contract."""

    registry_name = ""     # set by convkit.registry.register_layer
    multi_input = False    # True: forward takes a list of arrays and backward returns a list
    output_is_view = False  # True: the output is a view of the input (summary counts no activation memory)
    # False only inside backward_parameters_only: layers whose input gradient is costly may then skip it.
    _input_gradient_wanted = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _wrap_forward(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = _wrap_backward(cls.__dict__["backward"])

    def __init__(self, *, name: Optional[str] = None, trainable: bool = True, dtype: str = "float32",
                 input_shape: Optional[Shape] = None) -> None:
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"name must be a non-empty string without '/', got {name!r}")
        self.name = name or _default_name(type(self))
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = np.dtype(dtype).name
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        self._trainable = check_bool(trainable, "trainable")
        self.built = False
        self.built_input_shape: Optional[ShapeOrShapes] = None
        self._weights: list[Parameter] = []
        self._state: list[Parameter] = []
        self._saved: Optional[tuple] = None

    # ---- building ----------------------------------------------------------------------------------------

    def build(self, input_shape: ShapeOrShapes) -> None:
        """Create the parameters for inputs of input_shape (no batch axis). Default: none, and the shape is
        checked by compute_output_shape (which raises for inputs the layer cannot take)."""
        self.compute_output_shape(input_shape)

    def build_once(self, input_shape: ShapeOrShapes) -> None:
        """build(input_shape) unless built; under a lock, so that threads sharing an unbuilt model build it once."""
        with _build_lock:
            if self.built:
                return
            input_shape = [check_shape(s) for s in input_shape] if self.multi_input else check_shape(input_shape)
            self.build(input_shape)
            self.built, self.built_input_shape = True, input_shape

    def add_weight(self, name: str, shape: Shape, initializer="glorot_uniform", *, decay: bool = True) -> Parameter:
        """A learnable Parameter named '<layer name>/<name>', initialised now in the layer's dtype."""
        value = self._initial_value(name, shape, initializer)
        param = Parameter(f"{self.name}/{name}", value, trainable=self._trainable, decay=decay)
        self._weights.append(param)
        return param

    def add_state(self, name: str, shape: Shape, initializer="zeros") -> Parameter:
        """Non-trainable state updated by forward (BatchNorm's running statistics): saved with the weights,
        never trained, counted as non-trainable parameters."""
        value = self._initial_value(name, shape, initializer)
        param = Parameter(f"{self.name}/{name}", value, trainable=False, decay=False)
        self._state.append(param)
        return param

    def _initial_value(self, name: str, shape: Shape, initializer) -> np.ndarray:
        shape = tuple(shape)
        check = _declared_weight_check.get()
        if check is not None:
            check(f"{self.name}/{name}", shape)
        return initializers.get(initializer)(shape, np.dtype(self.dtype))

    # ---- computing ---------------------------------------------------------------------------------------

    def forward(self, x, training: bool = False):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def compute_output_shape(self, input_shape: ShapeOrShapes) -> Shape:
        """Output shape (no batch axis) for inputs of input_shape. Default: unchanged."""
        return input_shape

    def flops(self, input_shape: ShapeOrShapes) -> int:
        """Estimated forward FLOPs per sample (a multiply-add is 2 FLOPs). Default: 0."""
        return 0

    def save_for_backward(self, *values) -> None:
        self._saved = values

    def saved(self) -> tuple:
        """What forward(training=True) saved; RuntimeError if the last forward ran with training=False."""
        if self._saved is None:
            raise RuntimeError(
                f"layer {self.name!r}: backward() needs a forward(x, training=True) just before it (the last "
                "forward ran with training=False, never ran, or its gradient was already taken)")
        return self._saved

    def backward_parameters_only(self, dy) -> None:
        """backward(dy) for a layer whose input's gradient nobody reads (it reads the network's input): the
        parameter gradients only. The convolutions then skip dx, which in a first layer with few channels
        costs as much as the weights' gradient."""
        self._input_gradient_wanted = False
        try:
            self.backward(dy)
        finally:
            del self._input_gradient_wanted

    def accumulate(self, param: Parameter, grad: np.ndarray) -> None:
        """param.grad += grad, unless the parameter is frozen."""
        if param.trainable:
            param.grad += grad

    def __call__(self, inputs, training: bool = False):
        """On arrays: forward(inputs, training). On symbolic tensors (functional API): a new symbolic tensor."""
        if not is_symbolic(inputs):
            return self.forward(inputs, training)
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.multi_input != isinstance(inputs, (list, tuple)):
            raise TypeError(f"layer {self.name!r} takes {'a list of tensors' if self.multi_input else 'one tensor'}, "
                            f"got {inputs!r}")
        shapes = [t.shape for t in tensors] if self.multi_input else tensors[0].shape
        self.build_once(shapes)
        node = Node(self, tensors)
        node.output = SymbolicTensor(tuple(self.compute_output_shape(shapes)), node, self.dtype)
        return node.output

    # ---- parameters and configuration --------------------------------------------------------------------

    def parameters(self) -> list[Parameter]:
        """Learnable weights in creation order, then non-trainable state (names '<layer>/<weight>')."""
        return [*self._weights, *self._state]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """False freezes the layer: its weights get trainable=False, backward leaves their grads alone, and
        layers with state (BatchNormalization) run in inference mode."""
        self._trainable = check_bool(value, "trainable")
        for param in self._weights:
            param.trainable = self._trainable

    def count_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self._trainable, "dtype": self.dtype}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{'' if self.built else ' (not built)'}>"
