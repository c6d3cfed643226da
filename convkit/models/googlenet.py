"""GoogLeNet / Inception v1 (Szegedy et al. 2014), as in the paper's Table 1: biases and ReLU, LRN after the
stem, 5x5 branches, no BatchNorm and no auxiliary classifiers."""
from __future__ import annotations

from .. import layers
from ..network import Input, Model

# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) per Inception module, from the paper's Table 1.
INCEPTION_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(x, filters: int, kernel_size: int, *, name: str, strides: int = 1):
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=kernel_size // 2, activation="relu",
                         name=name)(x)


def inception_module(x, spec, *, name: str):
    """Four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool -> 1x1), concatenated on channels.
    The 1x1 "reduce" convolutions are the bottlenecks that keep the 3x3 and 5x5 branches affordable."""
    n1, r3, n3, r5, n5, pool_proj = spec
    b1 = _conv(x, n1, 1, name=f"{name}_1x1")
    b2 = _conv(_conv(x, r3, 1, name=f"{name}_3x3_reduce"), n3, 3, name=f"{name}_3x3")
    b3 = _conv(_conv(x, r5, 1, name=f"{name}_5x5_reduce"), n5, 5, name=f"{name}_5x5")
    b4 = layers.MaxPooling2D(3, strides=1, padding=1, name=f"{name}_pool")(x)
    b4 = _conv(b4, pool_proj, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


def googlenet(input_shape=(224, 224, 3), classes: int = 1000, *, dropout: float = 0.4) -> Model:
    """GoogLeNet: 6,998,552 trainable parameters on 224x224x3 with 1000 classes (weights and biases of the
    paper's Table 1, whose "params" column counts weights only: about 6.8M)."""
    def lrn(t, name):
        return layers.LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0, name=name)(t)

    inputs = Input(input_shape, name="input")
    x = _conv(inputs, 64, 7, strides=2, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding=1, name="pool1")(x)
    x = lrn(x, "norm1")
    x = _conv(x, 64, 1, name="conv2_reduce")
    x = _conv(x, 192, 3, name="conv2")
    x = lrn(x, "norm2")
    x = layers.MaxPooling2D(3, strides=2, padding=1, name="pool2")(x)
    for module in ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4", "5a", "5b"):
        if module.startswith("pool"):
            x = layers.MaxPooling2D(3, strides=2, padding=1, name=module)(x)
        else:
            x = inception_module(x, INCEPTION_MODULES[module], name=f"inception{module}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return Model(inputs, layers.Dense(classes, name="predictions")(x), name="googlenet")
