"""Building blocks the zoo's architectures share, in the functional API (symbolic tensors in and out)."""
from __future__ import annotations

from typing import Optional

from .. import layers


def conv_bn(x, filters: int, kernel_size, *, strides=1, groups: int = 1, activation: Optional[str] = "relu",
            name: str, padding=None):
    """Conv (no bias, since BatchNorm's shift replaces it) -> BatchNorm -> activation.

    Padding defaults to kernel_size // 2 on every side, as torchvision does, so stride-2 layers halve
    even sizes exactly like the published models."""
    if padding is None:
        padding = kernel_size // 2
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def bn_act(x, *, activation: str = "relu", name: str):
    """BatchNorm -> activation (the pre-activation order DenseNet uses)."""
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_{activation}")(x)


def classifier_head(x, classes: int, *, name: str = "predictions"):
    """Global average pooling then the linear classifier (logits: losses take logits, not probabilities)."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(classes, name=name)(x)
