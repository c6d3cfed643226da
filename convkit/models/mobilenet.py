"""MobileNet v1 (Howard et al. 2017): depthwise-separable convolutions with a width multiplier."""
from __future__ import annotations

from .. import layers
from ..network import Input, Model
from ._blocks import conv_bn

# (pointwise filters, depthwise stride) for the 13 depthwise-separable blocks of the paper's Table 1.
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet(input_shape=(224, 224, 3), classes: int = 1000, *, alpha: float = 1.0, depth_multiplier: int = 1,
              dropout: float = 1e-3, activation: str = "relu") -> Model:
    """MobileNet v1. alpha is the width multiplier (filters scaled by alpha), depth_multiplier the
    depthwise channel multiplier. With alpha=1, 224x224x3 and 1000 classes: 4,231,976 trainable parameters,
    Keras' count (its 21,888 non-trainable ones are the BatchNorm running statistics).

    The paper and Keras use ReLU6; `activation` picks it where available (the count does not depend on it)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    inputs = Input(input_shape, name="input")
    x = conv_bn(inputs, int(32 * alpha), 3, strides=2, activation=activation, name="conv1")
    for i, (filters, strides) in enumerate(MOBILENET_BLOCKS, start=1):
        x = layers.DepthwiseConv2D(3, strides=strides, padding=1, depth_multiplier=depth_multiplier,
                                   use_bias=False, name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(name=f"block{i}_dw_bn")(x)
        x = layers.Activation(activation, name=f"block{i}_dw_{activation}")(x)
        x = conv_bn(x, int(filters * alpha), 1, padding=0, activation=activation, name=f"block{i}_pw")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return Model(inputs, layers.Dense(classes, name="predictions")(x), name=f"mobilenet_{alpha:g}")
