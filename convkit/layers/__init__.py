"""Layers: one family per module. Every class here is registered by name in convkit.registry.

activation_layers: Activation (any activation by name), ReLU, LeakyReLU, ELU, Softmax, PReLU, Maxout.
dropout: Dropout, SpatialDropout1D/2D/3D, DropConnect (wraps Dense / convolutions), StochasticDepth.
A new layer is a module here plus its @register_layer; a new name for the `activation=` argument of Dense
and the convolutions is one register_activation call (activations.py registers every ops.ACTIVATIONS name).
"""
from .activation_layers import ELU, PReLU, Activation, LeakyReLU, Maxout, ReLU, Softmax
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
from .dropout import DropConnect, Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, StochasticDepth
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
from .sync_batch_norm import SyncBatchNormalization, convert_sync_batchnorm

__all__ = [
    "Activation", "AdaptiveAveragePooling", "AdaptiveMaxPooling", "Add", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "BatchNormalization", "Concatenate", "Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D",
    "Dense", "DepthwiseConv2D", "DropConnect", "Dropout", "ELU", "Flatten", "GlobalAveragePooling",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization", "InstanceNormalization",
    "Layer", "LayerNormalization", "LayerScale", "LeakyReLU", "LocalResponseNormalization", "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D", "Maxout", "Multiply", "PReLU", "ReLU", "Reshape", "SeparableConv1D", "SeparableConv2D",
    "Softmax", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "SpatiallySeparableConv2D",
    "SqueezeExcite", "StochasticDepth", "SyncBatchNormalization", "convert_sync_batchnorm", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
]
