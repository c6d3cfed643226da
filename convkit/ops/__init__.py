"""Functional API: NumPy arrays in, NumPy arrays out. Every argument is checked here, before the C++ core
runs, and a bad one raises ValueError/TypeError naming the argument and its value.

float32 is the fast path; float64 is supported everywhere (gradient checks use it). Mixing the two
computes in float64, as NumPy would.
"""
from ._composite import (
    flattened_conv2d,
    flattened_conv2d_backward,
    separable_conv,
    separable_conv_backward,
    spatially_separable_conv2d,
    spatially_separable_conv2d_backward,
)
from ._conv import conv, conv1d, conv2d, conv3d, conv_backward, conv_transpose, conv_transpose_backward
from ._gemm import gemm, matmul
from ._norm import (
    NormStats,
    batch_norm,
    batch_norm_backward,
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
    local_response_norm,
    local_response_norm_backward,
)

__all__ = [
    "NormStats",
    "batch_norm",
    "batch_norm_backward",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_backward",
    "conv_transpose",
    "conv_transpose_backward",
    "flattened_conv2d",
    "flattened_conv2d_backward",
    "gemm",
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_backward",
    "layer_norm",
    "layer_norm_backward",
    "local_response_norm",
    "local_response_norm_backward",
    "matmul",
    "separable_conv",
    "separable_conv_backward",
    "spatially_separable_conv2d",
    "spatially_separable_conv2d_backward",
]
