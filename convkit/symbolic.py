"""Symbolic tensors of the functional API: calling a layer on one records a Node instead of computing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(eq=False)
class Node:
    """One call of a layer in a graph: the tensors it read and the tensor it produced."""

    layer: object
    inputs: list  # of SymbolicTensor (empty for an Input)
    output: Optional["SymbolicTensor"] = None


@dataclass(eq=False)
class SymbolicTensor:
    """The output of a layer call in a graph being defined. shape excludes the batch axis."""

    shape: tuple
    node: Node = field(repr=False)
    dtype: str = "float32"

    def __repr__(self) -> str:
        return f"SymbolicTensor(shape=(None, {', '.join(map(str, self.shape))}), from={self.node.layer.name!r})"


def is_symbolic(inputs) -> bool:
    """True for a SymbolicTensor or a non-empty list/tuple of them; mixing with arrays raises TypeError."""
    if isinstance(inputs, SymbolicTensor):
        return True
    if isinstance(inputs, (list, tuple)) and inputs:
        kinds = {isinstance(t, SymbolicTensor) for t in inputs}
        if kinds == {True, False}:
            raise TypeError("a layer's inputs must be all symbolic tensors or all arrays, not a mix")
        return kinds == {True}
    return False
