"""The course's model zoo: functions returning built (untrained) networks, sizes configurable.

Every function takes `input_shape` (channels-last, without the batch axis) and `classes`, and returns a
model whose output is logits (the losses take logits). `get(name, **kwargs)` looks one up by name, which is
what `convkit train --model NAME` uses.
"""
from __future__ import annotations

from typing import Callable, Dict

from .alexnet import alexnet
from .convnext import convnext, convnext_block, convnext_tiny
from .densenet import densenet, densenet121
from .googlenet import googlenet, inception_module
from .lenet import lenet1, lenet5, lenet5_modern
from .mobilenet import mobilenet
from .resnet import (
    basic_block,
    bottleneck_block,
    resnet,
    resnet18,
    resnet18_cifar,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet_cifar,
    resnext50_32x4d,
    se_resnet50,
)
from .vgg import vgg, vgg11, vgg16, vgg19, vgg_cifar
from .xception import xception

MODELS: Dict[str, Callable] = {
    "lenet1": lenet1,
    "lenet5": lenet5,
    "lenet5_modern": lenet5_modern,
    "alexnet": alexnet,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "vgg_cifar": vgg_cifar,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnext50_32x4d": resnext50_32x4d,
    "se_resnet50": se_resnet50,
    "resnet18_cifar": resnet18_cifar,
    "resnet_cifar": resnet_cifar,
    "mobilenet": mobilenet,
    "xception": xception,
    "densenet121": densenet121,
    "convnext_tiny": convnext_tiny,
}


def available() -> list:
    """The names `get` accepts."""
    return sorted(MODELS)


def get(name: str, **kwargs):
    """Build the zoo model called `name` with the given options (input_shape=, classes=, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(available())}")
    shape = kwargs.get("input_shape")
    if shape is not None and (not isinstance(shape, (tuple, list)) or len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)):
        raise ValueError(f"input_shape must be (height, width, channels) with positive ints, got {shape!r}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "available", "get", *sorted(MODELS), "basic_block", "bottleneck_block", "convnext",
           "convnext_block", "densenet", "inception_module", "resnet", "vgg"]
