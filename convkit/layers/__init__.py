"""Layers: one family per module. Every class here is registered by name in convkit.registry.

Activation, PReLU, Maxout, Dropout, SpatialDropout, DropConnect and StochasticDepth come with the activation
and dropout ops (a new layer is a module here plus its @register_layer; new activation names for the
`activation=` argument are one register_activation call in activations.py).
"""
from .base import Layer
from .conv import (
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
    SpatiallySeparableConv2D,
)
from .core import Dense, Flatten, Reshape
from .merge import Add, Concatenate, Multiply
from .normalization import (
    BatchNormalization,
    GroupNormalization,
    InstanceNormalization,
    LayerNormalization,
    LocalResponseNormalization,
)
from .padding import ZeroPadding1D, ZeroPadding2D, ZeroPadding3D
from .pooling import (
    AdaptiveAveragePooling,
    AdaptiveMaxPooling,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .scale import LayerScale
from .squeeze_excite import SqueezeExcite

__all__ = [
    "Add", "AdaptiveAveragePooling", "AdaptiveMaxPooling", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "BatchNormalization", "Concatenate", "Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D",
    "Dense", "DepthwiseConv2D", "Flatten", "GlobalAveragePooling", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization", "InstanceNormalization", "LayerScale", "Layer",
    "LayerNormalization", "LocalResponseNormalization", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Multiply",
    "Reshape", "SeparableConv1D", "SeparableConv2D", "SpatiallySeparableConv2D", "SqueezeExcite", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D",
]
