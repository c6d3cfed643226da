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
from ._pool import (
    adaptive_avg_pool,
    adaptive_avg_pool_backward,
    adaptive_max_pool,
    adaptive_max_pool_backward,
    avg_pool,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    avg_pool_backward,
    global_avg_pool,
    global_avg_pool_backward,
    global_max_pool,
    global_max_pool_backward,
    max_pool,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_pool_backward,
)

__all__ = [
    "adaptive_avg_pool",
    "adaptive_avg_pool_backward",
    "adaptive_max_pool",
    "adaptive_max_pool_backward",
    "avg_pool",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "avg_pool_backward",
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
    "global_avg_pool",
    "global_avg_pool_backward",
    "global_max_pool",
    "global_max_pool_backward",
    "matmul",
    "max_pool",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool_backward",
    "separable_conv",
    "separable_conv_backward",
    "spatially_separable_conv2d",
    "spatially_separable_conv2d_backward",
]
