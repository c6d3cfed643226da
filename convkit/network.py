"""Networks of layers: Sequential (a stack) and Model (a graph from the functional API: Input, layer calls).

    model = Sequential([Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)), ...])

    x = Input((32, 32, 16))
    y = Add()([x, Conv2D(16, 3, padding="same")(x)])
    model = Model(x, y)

Both run forward(x, training) and backward(dy) -> dx; backward ADDS parameter gradients (call zero_grad()
between steps). Shapes given by users (input_shape, Input(shape)) exclude the batch axis.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Union

import numpy as np

from ._validate import as_float_array, check_bool
from .layers.base import Layer, Shape, check_shape
from .parameter import Parameter
from .registry import get_layer_class, register_layer, registered_layers
from .symbolic import Node, SymbolicTensor, is_symbolic
from .training import TrainingMixin

Arrays = Union[np.ndarray, list]


@register_layer
class InputLayer(Layer):
    """The source of a graph's input tensor (made by Input()); passes its input through."""

    def __init__(self, shape: Shape, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shape = check_shape(shape, "shape")

    def forward(self, x, training=False):
        if x.shape[1:] != self.shape:
            raise ValueError(f"input {self.name!r} expects arrays of shape (N, {', '.join(map(str, self.shape))}), "
                             f"got {x.shape}")
        if training:
            self.save_for_backward(True)
        return x

    def backward(self, dy):
        self.saved()
        return dy

    def get_config(self) -> dict:
        return {**super().get_config(), "shape": list(self.shape)}


def Input(shape: Shape, name: Optional[str] = None, dtype: str = "float32") -> SymbolicTensor:
    """A symbolic input of arrays (N, *shape); calling layers on it defines a graph for Model."""
    layer = InputLayer(shape, name=name, dtype=dtype)
    layer.build_once(layer.shape)
    node = Node(layer, [])
    node.output = SymbolicTensor(layer.shape, node, layer.dtype)
    return node.output


def _layer_entry(layer: Layer) -> dict:
    if not layer.registry_name:
        registered_layers()  # a plugin's class constructed directly is registered once the plugins load
    if not layer.registry_name:
        raise ValueError(f"layer {layer.name!r} of class {type(layer).__qualname__} is not registered: decorate "
                         "the class with @convkit.registry.register_layer to save or copy the model")
    return {"class_name": layer.registry_name, "config": layer.get_config()}


def _layer_from_entry(entry: dict) -> Layer:
    return get_layer_class(entry["class_name"]).from_config(entry["config"])


class Network(TrainingMixin):
    """What Sequential and Model share: parameters, names, configuration, summary, saving, and training
    (compile / fit / evaluate / predict, from TrainingMixin)."""

    def __init__(self, name: Optional[str]) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.name = name or type(self).__name__.lower()

    layers: list[Layer]
    # Called with each layer during backward once the layer's parameter gradients are complete (after its last
    # call in backward order), so that data-parallel training can start averaging them over the processes
    # while the rest of the backward pass runs (convkit.distributed). None: nothing is called.
    gradient_ready_hook: Optional[Callable[[Layer], None]] = None

    def __call__(self, x: Arrays, training: bool = False) -> Arrays:
        if is_symbolic(x):
            raise TypeError(f"{type(self).__name__} {self.name!r} cannot be called on symbolic tensors: networks do "
                            "not nest yet (call its layers instead)")
        return self.forward(x, training)

    def forward(self, x: Arrays, training: bool = False) -> Arrays:
        raise NotImplementedError

    def backward(self, dy: Arrays) -> Arrays:
        raise NotImplementedError

    def backward_for_step(self, dy: Arrays) -> None:
        """A training step's backward: parameter gradients only, no gradient for the network's input."""
        self.backward(dy, input_gradient=False)

    def _check_unique_names(self) -> None:
        seen: dict[str, Layer] = {}
        for layer in self.layers:
            if seen.setdefault(layer.name, layer) is not layer:
                raise ValueError(f"two different layers are named {layer.name!r}: names in a model must be unique")

    def parameters(self) -> list[Parameter]:
        """Every parameter and state array, layer by layer (a shared layer once), in a stable order."""
        return [p for layer in self.layers for p in layer.parameters()]

    def trainable_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters() if p.trainable]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def _gradients_ready(self, layer: Layer) -> None:
        if self.gradient_ready_hook is not None:
            self.gradient_ready_hook(layer)

    def get_layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in {self.name!r}; layers: {[layer.name for layer in self.layers]}")

    def count_params(self) -> int:
        return sum(p.size for p in self.parameters())

    @property
    def trainable(self) -> bool:
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for layer in self.layers:
            layer.trainable = value

    def summary(self, print_fn: Optional[Callable[[str], None]] = print, line_length: Optional[int] = None) -> str:
        """The Keras-style table (see convkit.summary); printed with print_fn (None: not printed) and returned."""
        from .summary import summarize
        text = summarize(self, line_length)
        if print_fn is not None:
            print_fn(text)
        return text

    def save(self, path, optimizer=None, metadata: Optional[dict] = None) -> None:
        """Architecture, weights, state, optimizer.state_dict() and a JSON-ready metadata dict in one file
        (convkit.saving)."""
        from .saving import save_model
        save_model(self, path, optimizer, metadata)

    def save_weights(self, path) -> None:
        from .saving import save_weights
        save_weights(self, path)

    def load_weights(self, path) -> None:
        from .saving import load_weights
        load_weights(self, path)

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Network":
        raise NotImplementedError

    def summary_nodes(self) -> list[tuple[Layer, Union[Shape, list], Shape, list[str]]]:
        """(layer, input shape(s), output shape, connected-to labels) per layer call, in execution order."""
        raise NotImplementedError


class Sequential(Network):
    """A stack of single-input layers. The input shape comes from `input_shape`, the first layer's
    input_shape=..., or the first forward call (the layers are then built)."""

    def __init__(self, layers: Sequence[Layer] = (), input_shape: Optional[Shape] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.layers: list[Layer] = []
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        for layer in layers:
            self.add(layer)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers) and self._input_shape() is not None

    def _input_shape(self) -> Optional[Shape]:
        if self.input_shape is None and self.layers:
            return self.layers[0].built_input_shape or self.layers[0].input_shape
        return self.input_shape

    def add(self, layer: Layer) -> None:
        """Append a layer; it is built at once when the input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes Layer objects, got {layer!r}")
        if layer.multi_input:
            raise ValueError(f"layer {layer.name!r} takes several inputs: use the functional API (Model)")
        if any(existing is layer for existing in self.layers):
            raise ValueError(f"layer {layer.name!r} is already in this Sequential (share weights with a Model)")
        self.layers.append(layer)
        self._check_unique_names()
        if self._input_shape() is not None:
            self._build(self._input_shape())

    def _build(self, input_shape: Shape) -> None:
        shape = input_shape
        for layer in self.layers:
            layer.build_once(shape)
            shape = tuple(layer.compute_output_shape(shape))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x (N, *input_shape) -> the last layer's output."""
        training = check_bool(training, "training")
        x = as_float_array(x, "x")
        if not self.layers:
            raise ValueError(f"Sequential {self.name!r} has no layers")
        if not self.built:
            self._build(x.shape[1:])
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dy: np.ndarray, input_gradient: bool = True) -> Optional[np.ndarray]:
        """dx of the last forward(x, training=True); adds every layer's parameter gradients.
        input_gradient=False returns None and spares the first layer the work of dx (a training step)."""
        dy = as_float_array(dy, "dy")
        input_gradient = check_bool(input_gradient, "input_gradient")
        first, *rest = self.layers
        for layer in reversed(rest):
            dy = layer.backward(dy)
            self._gradients_ready(layer)
        dx = first.backward(dy) if input_gradient else first.backward_parameters_only(dy)
        self._gradients_ready(first)
        return dx

    def summary_nodes(self):
        shape = self._input_shape()
        if shape is None:
            raise ValueError(f"{self.name!r} is not built: give input_shape= or call it on data first")
        rows = []
        for layer in self.layers:
            out = tuple(layer.compute_output_shape(shape))
            rows.append((layer, shape, out, []))
            shape = out
        return rows

    def get_config(self) -> dict:
        shape = self._input_shape()
        return {"name": self.name, "input_shape": None if shape is None else list(shape),
                "layers": [_layer_entry(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        return cls([_layer_from_entry(entry) for entry in config["layers"]], input_shape=config.get("input_shape"),
                   name=config.get("name"))


def _as_list(value) -> tuple[list, bool]:
    """(items, was_single)."""
    if isinstance(value, (list, tuple)):
        return list(value), False
    return [value], True


class Model(Network):
    """A graph of layer calls from Input tensors to output tensors (residual, multi-branch, shared layers,
    several inputs or outputs). forward runs the calls in topological order; backward runs them in reverse,
    summing the gradients of a tensor read by several calls (fan-out). A layer called twice shares weights.
    forward/backward take and return one array, or lists when inputs/outputs were given as lists."""

    def __init__(self, inputs, outputs, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.inputs, self._single_input = _as_list(inputs)
        self.outputs, self._single_output = _as_list(outputs)
        for t in (*self.inputs, *self.outputs):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from Input and layer calls), "
                                f"got {t!r}")
        self._nodes = self._topological_nodes()
        self.layers = list({id(node.layer): node.layer for node in self._nodes}.values())
        self._check_unique_names()
        self._saved: dict = {}
        # The call of each layer that backward runs last (its first in forward order): the layer's parameter
        # gradients are complete after it.
        self._final_backward_call: dict[int, int] = {}
        for node in reversed(self._nodes):
            self._final_backward_call[id(node.layer)] = id(node)

    def _topological_nodes(self) -> list[Node]:
        """The calls the outputs depend on, each after the calls it reads (iterative depth-first post-order:
        deep networks must not hit Python's recursion limit). Symbolic graphs cannot have cycles."""
        order: list[Node] = []
        seen: set[int] = set()
        for tensor in self.outputs:
            if id(tensor.node) in seen:
                continue
            seen.add(id(tensor.node))
            stack = [(tensor.node, iter(tensor.node.inputs))]
            while stack:
                node, pending = stack[-1]
                source = next(pending, None)
                if source is None:
                    stack.pop()
                    order.append(node)
                elif id(source.node) not in seen:
                    seen.add(id(source.node))
                    stack.append((source.node, iter(source.node.inputs)))
        given = {id(t) for t in self.inputs}
        for node in order:
            if not node.inputs and id(node.output) not in given:
                raise ValueError(f"the outputs depend on input {node.layer.name!r}, which is not among the Model's "
                                 "inputs")
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from Input(), got {t!r}")
        return order

    def _node_indices(self) -> dict[int, int]:
        """id(node) -> its index among the calls of its layer (Keras' node_index)."""
        counts: dict[int, int] = {}
        indices = {}
        for node in self._nodes:
            indices[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = indices[id(node)] + 1
        return indices

    def forward(self, x: Arrays, training: bool = False) -> Arrays:
        training = check_bool(training, "training")
        xs = [x] if self._single_input else list(x)
        if len(xs) != len(self.inputs):
            raise ValueError(f"Model {self.name!r} takes {len(self.inputs)} input arrays, got {len(xs)}")
        values = {id(t): as_float_array(a, f"x[{i}]") for i, (t, a) in enumerate(zip(self.inputs, xs))}
        self._saved = {}
        for node in self._nodes:
            layer = node.layer
            if not node.inputs:
                values[id(node.output)] = layer.forward(values[id(node.output)], training)
            else:
                args = [values[id(t)] for t in node.inputs]
                values[id(node.output)] = layer.forward(args if layer.multi_input else args[0], training)
            if training:
                self._saved[id(node)] = layer._saved
        outputs = [values[id(t)] for t in self.outputs]
        return outputs[0] if self._single_output else outputs

    def backward(self, dy: Arrays, input_gradient: bool = True) -> Optional[Arrays]:
        """Input gradients of the last forward(x, training=True). dy: one array per output (None: zeros).
        input_gradient=False returns None, and layer calls that read only the inputs skip their dx."""
        input_gradient = check_bool(input_gradient, "input_gradient")
        dys = [dy] if self._single_output else list(dy)
        if len(dys) != len(self.outputs):
            raise ValueError(f"Model {self.name!r} has {len(self.outputs)} outputs, got {len(dys)} gradients")
        grads: dict[int, np.ndarray] = {}
        for t, g in zip(self.outputs, dys):
            if g is not None:
                g = as_float_array(g, "dy")
                grads[id(t)] = g if id(t) not in grads else grads[id(t)] + g
        for node in reversed(self._nodes):
            g = grads.pop(id(node.output), None) if node.inputs else grads.get(id(node.output))
            if g is None or not node.inputs:
                continue
            if id(node) not in self._saved:
                raise RuntimeError(f"Model {self.name!r}: backward() needs a forward(x, training=True) just before it")
            node.layer._saved = self._saved.pop(id(node))
            if not input_gradient and all(isinstance(t.node.layer, InputLayer) for t in node.inputs):
                node.layer.backward_parameters_only(g)
            else:
                result = node.layer.backward(g)
                for t, d in zip(node.inputs, result if node.layer.multi_input else [result]):
                    grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
            if self._final_backward_call[id(node.layer)] == id(node):
                self._gradients_ready(node.layer)
        if not input_gradient:
            return None
        dxs = [grads.get(id(t), np.zeros((dys[0].shape[0] if dys[0] is not None else 0, *t.shape)))
               for t in self.inputs]
        return dxs[0] if self._single_input else dxs

    def summary_nodes(self):
        indices = self._node_indices()
        rows = []
        for node in self._nodes:
            shapes = [t.shape for t in node.inputs]
            in_shape = shapes if node.layer.multi_input else (shapes[0] if shapes else node.output.shape)
            links = [f"{t.node.layer.name}[{indices[id(t.node)]}][0]" for t in node.inputs]
            rows.append((node.layer, in_shape, node.output.shape, links))
        return rows

    def get_config(self) -> dict:
        indices = self._node_indices()

        def ref(t: SymbolicTensor) -> list:
            return [t.node.layer.name, indices[id(t.node)]]

        return {"name": self.name,
                "layers": [_layer_entry(layer) for layer in self.layers],
                "nodes": [{"layer": node.layer.name, "inputs": [ref(t) for t in node.inputs]}
                          for node in self._nodes if node.inputs],
                "inputs": [ref(t) for t in self.inputs], "outputs": [ref(t) for t in self.outputs],
                "single_input": self._single_input, "single_output": self._single_output}

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        layers = {entry["config"]["name"]: _layer_from_entry(entry) for entry in config["layers"]}
        tensors: dict[tuple, SymbolicTensor] = {}
        for name, layer in layers.items():
            if isinstance(layer, InputLayer):
                layer.build_once(layer.shape)
                node = Node(layer, [])
                node.output = tensors[(name, 0)] = SymbolicTensor(layer.shape, node, layer.dtype)
        calls: dict[str, int] = {}
        for node in config["nodes"]:
            layer = layers[node["layer"]]
            inputs = [tensors[tuple(ref)] for ref in node["inputs"]]
            out = layer(inputs if layer.multi_input else inputs[0])
            tensors[(node["layer"], calls.get(node["layer"], 0))] = out
            calls[node["layer"]] = calls.get(node["layer"], 0) + 1
        inputs = [tensors[tuple(ref)] for ref in config["inputs"]]
        outputs = [tensors[tuple(ref)] for ref in config["outputs"]]
        return cls(inputs[0] if config.get("single_input", True) else inputs,
                   outputs[0] if config.get("single_output", True) else outputs, name=config.get("name"))


NETWORKS = {"Sequential": Sequential, "Model": Model}


def network_to_config(network: Network) -> dict:
    return {"class_name": type(network).__name__, "config": network.get_config()}


def network_from_config(config: dict) -> Network:
    name = config.get("class_name")
    if name not in NETWORKS:
        raise ValueError(f"unknown network class {name!r}; known: {sorted(NETWORKS)}")
    return NETWORKS[name].from_config(config["config"])
