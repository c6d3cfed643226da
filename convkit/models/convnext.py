"""ConvNeXt (Liu et al. 2022): a ResNet modernised with transformer-era choices — patchify stem, 7x7
depthwise convolutions, LayerNorm, an inverted-bottleneck MLP with GELU, layer scale and stochastic depth."""
from __future__ import annotations

from typing import Sequence

from .. import layers
from ..network import Input, Model

CONVNEXT_CONFIGS = {"tiny": ((3, 3, 9, 3), (96, 192, 384, 768)), "small": ((3, 3, 27, 3), (96, 192, 384, 768))}


def convnext_block(x, *, drop_path: float, layer_scale: float, name: str):
    """depthwise 7x7 -> LayerNorm -> Dense 4C -> GELU -> Dense C -> layer scale -> [stochastic depth] + input.

    Channels-last makes the two "1x1 convolutions" plain Dense layers on the last axis, as in the paper's code."""
    channels = x.shape[-1]
    y = layers.DepthwiseConv2D(7, padding=3, name=f"{name}_dwconv")(x)
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(y)
    y = layers.Dense(4 * channels, activation="gelu", name=f"{name}_pwconv1")(y)
    y = layers.Dense(channels, name=f"{name}_pwconv2")(y)
    if layer_scale > 0:
        y = layers.LayerScale(layer_scale, name=f"{name}_layer_scale")(y)
    if drop_path > 0:
        return layers.StochasticDepth(drop_path, name=f"{name}_drop_path")([x, y])
    return layers.Add(name=f"{name}_add")([x, y])


def convnext(variant: str = "tiny", input_shape=(224, 224, 3), classes: int = 1000, *,
             depths: Sequence[int] = None, dims: Sequence[int] = None, drop_path_rate: float = 0.0,
             layer_scale: float = 1e-6) -> Model:
    """ConvNeXt-T ("tiny": depths 3-3-9-3, widths 96-192-384-768): 28,589,128 trainable parameters on
    224x224x3 with 1000 classes (torchvision's count). drop_path_rate rises linearly over the blocks to the
    given value, as in the paper."""
    if depths is None or dims is None:
        if variant not in CONVNEXT_CONFIGS:
            raise ValueError(f"variant must be one of {sorted(CONVNEXT_CONFIGS)} (or pass depths= and dims=), "
                             f"got {variant!r}")
        depths, dims = depths or CONVNEXT_CONFIGS[variant][0], dims or CONVNEXT_CONFIGS[variant][1]
    total_blocks = sum(depths)
    inputs = Input(input_shape, name="input")
    x = layers.Conv2D(dims[0], 4, strides=4, name="stem_conv")(inputs)
    x = layers.LayerNormalization(epsilon=1e-6, name="stem_norm")(x)
    block_index = 0
    for stage, (depth, dim) in enumerate(zip(depths, dims), start=1):
        if stage > 1:
            x = layers.LayerNormalization(epsilon=1e-6, name=f"downsample{stage}_norm")(x)
            x = layers.Conv2D(dim, 2, strides=2, name=f"downsample{stage}_conv")(x)
        for i in range(1, depth + 1):
            rate = drop_path_rate * block_index / max(total_blocks - 1, 1)
            x = convnext_block(x, drop_path=rate, layer_scale=layer_scale, name=f"stage{stage}_block{i}")
            block_index += 1
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
    return Model(inputs, layers.Dense(classes, name="predictions")(x), name=f"convnext_{variant}")


def convnext_tiny(**kwargs) -> Model:
    return convnext("tiny", **kwargs)
