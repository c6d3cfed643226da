"""ResNet (He et al. 2015), ResNeXt (Xie et al. 2016) and SE-ResNet (Hu et al. 2017), torchvision's layout:
stride on the 3x3 convolution of bottleneck blocks ("ResNet v1.5"), 1x1 projection shortcuts when the shape
changes, BatchNorm after every convolution. Trainable parameter counts with 1000 classes equal
torchvision's: ResNet-18 11,689,512, -34 21,797,672, -50 25,557,032, -101 44,549,160, -152 60,192,808,
ResNeXt-50 32x4d 25,028,904.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .. import layers
from ..network import Input, Model
from ._blocks import classifier_head, conv_bn

# Blocks per stage for each published depth, and whether the depth uses bottleneck blocks.
RESNET_STAGES = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


def _shortcut(x, filters: int, strides: int, *, name: str):
    """Identity when the shape is kept, otherwise a strided 1x1 projection (He et al.'s option B)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, strides=strides, activation=None, padding=0, name=f"{name}_proj")


def _squeeze_excite(x, se_ratio: Optional[int], *, name: str):
    if se_ratio is None:
        return x
    return layers.SqueezeExcite(ratio=se_ratio, name=f"{name}_se")(x)


def basic_block(x, filters: int, strides: int, *, name: str, se_ratio: Optional[int] = None):
    """3x3 -> 3x3 with the input added back: the block of ResNet-18/34."""
    shortcut = _shortcut(x, filters, strides, name=name)
    y = conv_bn(x, filters, 3, strides=strides, name=f"{name}_1")
    y = conv_bn(y, filters, 3, activation=None, name=f"{name}_2")
    y = _squeeze_excite(y, se_ratio, name=name)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(x, filters: int, strides: int, *, name: str, groups: int = 1, width_per_group: int = 64,
                     se_ratio: Optional[int] = None, expansion: int = 4):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand to filters * expansion, plus the shortcut."""
    width = filters * width_per_group // 64 * groups
    out = filters * expansion
    shortcut = _shortcut(x, out, strides, name=name)
    y = conv_bn(x, width, 1, padding=0, name=f"{name}_1")
    y = conv_bn(y, width, 3, strides=strides, groups=groups, name=f"{name}_2")
    y = conv_bn(y, out, 1, padding=0, activation=None, name=f"{name}_3")
    y = _squeeze_excite(y, se_ratio, name=name)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _stages(x, stage_blocks: Sequence[int], bottleneck: bool, *, base_filters: int, groups: int,
            width_per_group: int, se_ratio: Optional[int]):
    for stage, blocks in enumerate(stage_blocks):
        filters = base_filters * 2 ** stage
        for block in range(blocks):
            strides = 2 if block == 0 and stage > 0 else 1
            name = f"stage{stage + 1}_block{block + 1}"
            if bottleneck:
                x = bottleneck_block(x, filters, strides, name=name, groups=groups,
                                     width_per_group=width_per_group, se_ratio=se_ratio)
            else:
                x = basic_block(x, filters, strides, name=name, se_ratio=se_ratio)
    return x


def resnet(depth: int = 50, input_shape=(224, 224, 3), classes: int = 1000, *, groups: int = 1,
           width_per_group: int = 64, se_ratio: Optional[int] = None, cifar_stem: bool = False,
           name: Optional[str] = None) -> Model:
    """ResNet of a published depth (18, 34, 50, 101, 152); ResNeXt with groups/width_per_group; SE-ResNet
    with se_ratio (16 in the paper). cifar_stem=True replaces the 7x7/2 convolution and max-pool with one
    3x3/1 convolution, the usual adaptation to 32x32 images."""
    if depth not in RESNET_STAGES:
        raise ValueError(f"depth must be one of {sorted(RESNET_STAGES)}, got {depth!r}")
    stage_blocks, bottleneck = RESNET_STAGES[depth]
    if (groups != 1 or width_per_group != 64) and not bottleneck:
        raise ValueError(f"groups and width_per_group need bottleneck blocks (depth >= 50), got depth={depth}")
    inputs = Input(input_shape, name="input")
    if cifar_stem:
        x = conv_bn(inputs, 64, 3, name="stem")
    else:
        x = conv_bn(inputs, 64, 7, strides=2, name="stem")
        x = layers.MaxPooling2D(3, strides=2, padding=1, name="stem_pool")(x)
    x = _stages(x, stage_blocks, bottleneck, base_filters=64, groups=groups, width_per_group=width_per_group,
                se_ratio=se_ratio)
    return Model(inputs, classifier_head(x, classes), name=name or f"resnet{depth}")


def resnet18(**kwargs) -> Model:
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> Model:
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> Model:
    return resnet(50, **kwargs)


def resnet101(**kwargs) -> Model:
    return resnet(101, **kwargs)


def resnet152(**kwargs) -> Model:
    return resnet(152, **kwargs)


def resnext50_32x4d(**kwargs) -> Model:
    """ResNeXt-50 (32x4d): 32 groups of 4 channels in the first stage's 3x3 convolutions."""
    return resnet(50, groups=32, width_per_group=4, name="resnext50_32x4d", **kwargs)


def se_resnet50(**kwargs) -> Model:
    """SE-ResNet-50: a squeeze-and-excitation block (reduction 16) on every bottleneck's residual branch."""
    return resnet(50, se_ratio=16, name="se_resnet50", **kwargs)


def resnet18_cifar(input_shape=(32, 32, 3), classes: int = 10, **kwargs) -> Model:
    """ResNet-18 with the 32x32 stem (11,173,962 trainable parameters with 10 classes)."""
    return resnet(18, input_shape=input_shape, classes=classes, cifar_stem=True, name="resnet18_cifar", **kwargs)


def resnet_cifar(depth: int = 20, input_shape=(32, 32, 3), classes: int = 10, *, width: int = 16) -> Model:
    """He et al.'s CIFAR ResNets (depth 6n+2: 20, 32, 44, 56, 110): three stages of n basic blocks with
    width, 2*width and 4*width filters on 32x32, 16x16 and 8x8 maps. Projection shortcuts where the
    shape changes (ResNet-20: 272,474 trainable parameters with 10 classes)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}")
    n = (depth - 2) // 6
    inputs = Input(input_shape, name="input")
    x = conv_bn(inputs, width, 3, name="stem")
    x = _stages(x, (n, n, n), False, base_filters=width, groups=1, width_per_group=64, se_ratio=None)
    return Model(inputs, classifier_head(x, classes), name=f"resnet{depth}_cifar")
