"""DenseNet (Huang et al. 2017): every layer of a dense block sees the concatenation of all earlier ones."""
from __future__ import annotations

from typing import Sequence

from .. import layers
from ..network import Input, Model
from ._blocks import bn_act, conv_bn

DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def _dense_layer(x, growth_rate: int, bottleneck_width: int, *, name: str):
    """BN-ReLU-1x1 (bottleneck_width * growth_rate) -> BN-ReLU-3x3 (growth_rate), concatenated to the input."""
    y = bn_act(x, name=f"{name}_1")
    y = layers.Conv2D(bottleneck_width * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = bn_act(y, name=f"{name}_2")
    y = layers.Conv2D(growth_rate, 3, padding=1, use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def _transition(x, compression: float, *, name: str):
    """BN-ReLU-1x1 to compression * channels, then 2x2 average pooling."""
    y = bn_act(x, name=name)
    y = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, name=f"{name}_conv")(y)
    return layers.AveragePooling2D(2, name=f"{name}_pool")(y)


def densenet(depth: int = 121, input_shape=(224, 224, 3), classes: int = 1000, *, growth_rate: int = 32,
             blocks: Sequence[int] = None, bottleneck_width: int = 4, compression: float = 0.5) -> Model:
    """DenseNet-BC. DenseNet-121 on 224x224x3 with 1000 classes: 7,978,856 trainable parameters
    (torchvision's and Keras' count). `blocks` overrides the layers per dense block of `depth`."""
    if blocks is None:
        if depth not in DENSENET_BLOCKS:
            raise ValueError(f"depth must be one of {sorted(DENSENET_BLOCKS)} (or pass blocks=), got {depth!r}")
        blocks = DENSENET_BLOCKS[depth]
    inputs = Input(input_shape, name="input")
    x = conv_bn(inputs, 2 * growth_rate, 7, strides=2, name="stem")
    x = layers.MaxPooling2D(3, strides=2, padding=1, name="stem_pool")(x)
    for b, n_layers in enumerate(blocks, start=1):
        for i in range(1, n_layers + 1):
            x = _dense_layer(x, growth_rate, bottleneck_width, name=f"block{b}_layer{i}")
        if b < len(blocks):
            x = _transition(x, compression, name=f"transition{b}")
    x = bn_act(x, name="final")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return Model(inputs, layers.Dense(classes, name="predictions")(x), name=f"densenet{depth}")


def densenet121(**kwargs) -> Model:
    return densenet(121, **kwargs)
