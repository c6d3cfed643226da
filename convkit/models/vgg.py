"""VGG-11/16/19 (Simonyan & Zisserman 2014) and a BatchNorm VGG for 32x32 images."""
from __future__ import annotations

from .. import layers
from ..network import Sequential

# Filters per 3x3 convolution, "M" for a 2x2 max-pool: configurations A (11), D (16) and E (19) of the paper.
VGG_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _features(depth: int, *, batch_norm: bool, width: float):
    if depth not in VGG_CONFIGS:
        raise ValueError(f"depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}")
    stack, block, conv = [], 1, 1
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            stack.append(layers.MaxPooling2D(2, name=f"block{block}_pool"))
            block, conv = block + 1, 1
            continue
        name = f"block{block}_conv{conv}"
        filters = max(1, int(item * width))
        if batch_norm:
            stack += [layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name),
                      layers.BatchNormalization(name=f"{name}_bn"),
                      layers.Activation("relu", name=f"{name}_relu")]
        else:
            stack.append(layers.Conv2D(filters, 3, padding="same", activation="relu", name=name))
        conv += 1
    return stack


def vgg(depth: int = 16, input_shape=(224, 224, 3), classes: int = 1000, *, dropout: float = 0.5) -> Sequential:
    """VGG-11/16/19 as published: 3x3 convolutions with biases and ReLU, five max-pools, three dense layers.

    Parameters with 1000 classes on 224x224x3: VGG-11 132,863,336; VGG-16 138,357,544; VGG-19 143,667,240."""
    return Sequential(_features(depth, batch_norm=False, width=1.0) + [
        layers.Flatten(name="flatten"),
        layers.Dense(4096, activation="relu", name="fc1"),
        layers.Dropout(dropout, name="drop1"),
        layers.Dense(4096, activation="relu", name="fc2"),
        layers.Dropout(dropout, name="drop2"),
        layers.Dense(classes, name="predictions"),
    ], input_shape=input_shape, name=f"vgg{depth}")


def vgg11(**kwargs) -> Sequential:
    return vgg(11, **kwargs)


def vgg16(**kwargs) -> Sequential:
    return vgg(16, **kwargs)


def vgg19(**kwargs) -> Sequential:
    return vgg(19, **kwargs)


def vgg_cifar(depth: int = 11, input_shape=(32, 32, 3), classes: int = 10, *, width: float = 1.0) -> Sequential:
    """VGG for 32x32 images: BatchNorm after every convolution, and one dense layer on the 1x1x512 map
    that five poolings leave (VGG-11: 9,228,362 trainable parameters with 10 classes and width 1). `width` scales
    every layer's filters (0.25 trains in minutes on a laptop CPU)."""
    return Sequential(_features(depth, batch_norm=True, width=width) + [
        layers.Flatten(name="flatten"),
        layers.Dense(classes, name="predictions"),
    ], input_shape=input_shape, name=f"vgg{depth}_cifar")
