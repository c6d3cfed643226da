"""Xception (Chollet 2017): depthwise-separable convolutions with residual connections, Keras' layout."""
from __future__ import annotations

from .. import layers
from ..network import Input, Model
from ._blocks import conv_bn


def _sep_bn(x, filters: int, *, name: str, relu_first: bool = True):
    """[ReLU] -> separable 3x3 (no bias) -> BatchNorm: Xception's unit."""
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _downsampling_block(x, filters: int, *, name: str, first_relu: bool = True, filters_2=None):
    shortcut = conv_bn(x, filters_2 or filters, 1, strides=2, padding=0, activation=None, name=f"{name}_proj")
    y = _sep_bn(x, filters, name=f"{name}_1", relu_first=first_relu)
    y = _sep_bn(y, filters_2 or filters, name=f"{name}_2")
    y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def xception(input_shape=(299, 299, 3), classes: int = 1000, *, middle_blocks: int = 8) -> Model:
    """Xception: entry flow (3 strided residual blocks), middle flow (8 residual blocks of 3 separable
    convolutions at 728 channels), exit flow. 22,855,952 trainable parameters on 299x299x3 with 1000 classes
    (Keras' count)."""
    inputs = Input(input_shape, name="input")
    x = conv_bn(inputs, 32, 3, strides=2, padding=0, name="entry_conv1")
    x = conv_bn(x, 64, 3, padding=0, name="entry_conv2")
    x = _downsampling_block(x, 128, first_relu=False, name="entry_block1")
    x = _downsampling_block(x, 256, name="entry_block2")
    x = _downsampling_block(x, 728, name="entry_block3")
    for i in range(1, middle_blocks + 1):
        y = x
        for j in range(1, 4):
            y = _sep_bn(y, 728, name=f"middle_block{i}_{j}")
        x = layers.Add(name=f"middle_block{i}_add")([x, y])
    x = _downsampling_block(x, 728, filters_2=1024, name="exit_block")
    x = _sep_bn(x, 1536, name="exit_conv1", relu_first=False)
    x = layers.Activation("relu", name="exit_conv1_out")(x)
    x = _sep_bn(x, 2048, name="exit_conv2", relu_first=False)
    x = layers.Activation("relu", name="exit_conv2_out")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return Model(inputs, layers.Dense(classes, name="predictions")(x), name="xception")
