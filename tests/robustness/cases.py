"""The bad-input battery: named cases, each a call into convkit.ops (or preprocessing) with one bad argument.

A case either expects an exception (`raises`: its type, and fragments its message must contain: the
argument's name and the offending value), or must work (`works`: it asserts on the result itself). The
cases run in subprocesses (run_cases.py) so that a segfault or an abort fails its case instead of the
test session; test_bad_inputs.py collects them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import convkit
from convkit import layers, ops
from convkit.preprocessing import ChannelStandardization


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[], object]
    raises: Optional[tuple] = None  # exception types; None: the call must return
    fragments: tuple = ()  # each must occur in the message


CASES: dict[str, Case] = {}


def _segfault():
    import ctypes

    ctypes.string_at(0)


# Not part of the battery: a case that kills its process, to check that the harness attributes a crash.
PROBES: dict[str, Case] = {"probe_segfault": Case("probe_segfault", _segfault)}


def raises(exc, *fragments: str):
    def register(fn):
        CASES[fn.__name__] = Case(fn.__name__, fn, exc if isinstance(exc, tuple) else (exc,), fragments)
        return fn

    return register


def works(fn):
    CASES[fn.__name__] = Case(fn.__name__, fn)
    return fn


def f32(*shape) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


X = f32(2, 8, 8, 4)
W = f32(3, 3, 4, 6)
BIG = 8 * 10**18


# ---- conv: strides, dilations, padding ----
@raises(ValueError, "stride", "0")
def conv_stride_zero():
    ops.conv(X, W, stride=0)


@raises(ValueError, "stride", "-2")
def conv_stride_negative():
    ops.conv(X, W, stride=-2)


@raises(ValueError, "dilation", "0")
def conv_dilation_zero():
    ops.conv(X, W, dilation=(1, 0))


@raises(ValueError, "dilation", "-1")
def conv_dilation_negative():
    ops.conv(X, W, dilation=-1)


@raises(ValueError, "padding", "-8000000000000000000")
def conv_padding_absurd_negative():
    ops.conv(X, W, padding=-BIG)


@raises((ValueError, MemoryError), "8000000000000000000")
def conv_padding_absurd_positive():
    ops.conv(X, W, padding=BIG)


@raises(ValueError, "padding", "-1")
def conv_padding_negative_pair():
    ops.conv(X, W, padding=((1, -1), (0, 0)))


@raises(ValueError, "padding_mode='reflect'", "8")
def conv_reflect_padding_equals_input():
    ops.conv(X, W, padding=8, padding_mode="reflect")


@raises(ValueError, "padding_mode='circular'", "9")
def conv_circular_padding_over_input():
    ops.conv(X, W, padding=9, padding_mode="circular")


@raises(ValueError, "padding_mode", "'mirror'")
def conv_unknown_padding_mode():
    ops.conv(X, W, padding=1, padding_mode="mirror")


@raises(ValueError, "padding", "'full'")
def conv_unknown_padding_string():
    ops.conv(X, W, padding="full")


@raises(ValueError, "stride", "(1, 1, 1)")
def conv_stride_tuple_too_long():
    ops.conv(X, W, stride=(1, 1, 1))


@raises(ValueError, "stride", "()")
def conv_stride_tuple_empty():
    ops.conv(X, W, stride=())


@raises(ValueError, "padding", "(1,)")
def conv_padding_tuple_too_short():
    ops.conv(X, W, padding=(1,))


@raises(ValueError, "padding", "(1, 2, 3)")
def conv_padding_triple_pair():
    ops.conv(X, W, padding=((1, 2, 3), (0, 0)))


@raises(ValueError, "stride", "1.5")
def conv_stride_float():
    ops.conv(X, W, stride=1.5)


@raises(ValueError, "stride", "True")
def conv_stride_bool():
    ops.conv(X, W, stride=True)


# ---- conv: groups ----
@raises(ValueError, "groups", "0")
def conv_groups_zero():
    ops.conv(X, W, groups=0)


@raises(ValueError, "groups", "-2")
def conv_groups_negative():
    ops.conv(X, W, groups=-2)


@raises(ValueError, "groups", "3")
def conv_groups_not_dividing():
    ops.conv(X, f32(3, 3, 1, 6), groups=3)


@raises(ValueError, "w of shape", "(3, 3, 4, 6)")
def conv_groups_wrong_weight_channels():
    ops.conv(X, W, groups=2)


# ---- conv: shapes, ranks, sizes ----
@raises(ValueError, "kernel of size 9", "8")
def conv_kernel_larger_than_input():
    ops.conv(X, f32(9, 9, 4, 2))


@raises(ValueError, "x", "(2, 8, 4)")
def conv_x_rank_too_low():
    ops.conv(f32(2, 8, 4), W)


@raises(ValueError, "x", "(1, 2, 2, 2, 2, 2)")
def conv_x_rank_too_high():
    ops.conv(f32(1, 2, 2, 2, 2, 2), f32(1, 1, 1, 1, 2, 2))


@raises(ValueError, "w", "(3, 4, 6)")
def conv_w_rank_mismatch():
    ops.conv(X, f32(3, 4, 6))


@raises(ValueError, "w of shape", "(3, 3, 5, 6)")
def conv_w_channel_mismatch():
    ops.conv(X, f32(3, 3, 5, 6))


@raises(ValueError, "x", "(2, 0, 8, 4)")
def conv_empty_spatial():
    ops.conv(f32(2, 0, 8, 4), W)


@raises(ValueError, "x", "(2, 8, 8, 0)")
def conv_empty_channels():
    ops.conv(f32(2, 8, 8, 0), f32(3, 3, 0, 6))


@raises(ValueError, "w", "(3, 3, 4, 0)")
def conv_zero_filters():
    ops.conv(X, f32(3, 3, 4, 0))


@raises(ValueError, "bias", "(5,)")
def conv_bias_wrong_length():
    ops.conv(X, W, f32(5))


@raises(ValueError, "dy", "(2, 6, 6, 5)")
def conv_backward_dy_shape_mismatch():
    ops.conv_backward(f32(2, 6, 6, 5), X, W)


@raises(ValueError, "need", "'z'")
def conv_backward_unknown_gradient():
    ops.conv_backward(f32(2, 6, 6, 6), X, W, need=("x", "z"))


@works
def conv_empty_batch_forward_and_backward():
    x = f32(0, 8, 8, 4)
    y = ops.conv(x, W, f32(6), padding=1)
    assert y.shape == (0, 8, 8, 6) and y.dtype == np.float32
    dx, dw, db = ops.conv_backward(np.zeros(y.shape, np.float32), x, W, padding=1)
    assert dx.shape == x.shape and dw.shape == W.shape and db.shape == (6,)
    assert not dw.any() and not db.any()


@works
def conv_depthwise_empty_batch():
    x = f32(0, 5, 5, 4)
    y = ops.conv(x, f32(3, 3, 1, 8), groups=4, padding="same")
    dx, dw, db = ops.conv_backward(np.zeros(y.shape, np.float32), x, f32(3, 3, 1, 8), groups=4, padding="same")
    assert y.shape == (0, 5, 5, 8) and dx.shape == x.shape and not dw.any() and not db.any()


@works
def conv_nan_and_inf_propagate():
    x = X.copy()
    x[0, 3, 3, 0], x[1, 0, 0, 1] = np.nan, np.inf
    y = ops.conv(x, W)
    assert np.isnan(y[0, 1:4, 1:4]).all() and np.isfinite(y[0, 5:, 5:]).all()
    assert not np.isfinite(y[1, 0, 0]).any()


# ---- dtypes ----
@raises(TypeError, "x", "int64")
def conv_int_input():
    ops.conv(np.ones((2, 8, 8, 4), np.int64), W)


@raises(TypeError, "w", "float16")
def conv_float16_weights():
    ops.conv(X, W.astype(np.float16))


@raises(TypeError, "x", "object")
def conv_object_input():
    ops.conv(np.empty((2, 8, 8, 4), object), W)


@raises(TypeError, "x", "bool")
def conv_bool_input():
    ops.conv(np.ones((2, 8, 8, 4), bool), W)


@raises(TypeError, "x", "complex")
def conv_complex_input():
    ops.conv(X.astype(np.complex64), W)


# ---- sizes: int64 overflow and workspace ----
@raises((ValueError, MemoryError), "stride", str(2**63))
def conv_stride_over_int64():
    ops.conv(X, W, stride=2**63)


@raises(ValueError, "dilation 4611686018427387904")
def conv_dilation_overflowing_extent():
    ops.conv(X, W, dilation=2**62)


@raises(ValueError, "output", "1208925819616828197961729 elements")
def conv_transpose_output_elements_overflow_int64():
    # a 2x2 input, upsampled by a stride of 2**40 per axis: 2**80 output elements
    ops.conv_transpose(f32(1, 2, 2, 1), f32(1, 1, 1, 1), stride=2**40)


@raises(MemoryError, "output", "bytes")
def conv_transpose_output_bytes_overflow_int64():
    # about 2**62 elements fit int64, their 2**64 bytes do not
    ops.conv_transpose(f32(1, 2, 2, 1), f32(1, 1, 4, 1), stride=2**30)


@raises(MemoryError, "bytes", "limit of 1024")
def conv_backward_workspace_over_limit():
    convkit.set_workspace_limit(1024)  # few channels: the direct kernels' dw sums need ~2 KiB here
    ops.conv_backward(f32(2, 6, 6, 6), X, W)


@raises(MemoryError, "column tile", "2147483648 bytes", "limit of 1073741824")
def conv_backward_column_row_over_default_limit():
    # an 8192 x 8192 kernel over 8 channels: one column row is 2 GiB (broadcast views: nothing allocated)
    x = np.broadcast_to(np.float32(1), (1, 2**13, 2**13, 8))
    w = np.broadcast_to(np.float32(1), (2**13, 2**13, 8, 1))
    ops.conv_backward(np.ones((1, 1, 1, 1), np.float32), x, w)


@raises(MemoryError, "bytes", "limit of 0")
def gemm_workspace_over_limit():
    convkit.set_workspace_limit(0)
    ops.matmul(f32(8, 8), f32(8, 8))


@raises(ValueError, "bytes", "-1")
def workspace_limit_negative():
    convkit.set_workspace_limit(-1)


@raises(TypeError, "bytes", "1.5")
def workspace_limit_float():
    convkit.set_workspace_limit(1.5)


@works
def conv_backward_tiles_under_low_limit():
    # 64 KiB holds the packing panels and a smaller column tile than the usual 1 MiB: still works. dw sums
    # its tiles in order, so in float32 it may differ by a few ulps of its largest element.
    dy = f32(2, 8, 6, 6)
    expected = ops.conv_backward(dy, X, W, padding=(1, 0), padding_mode="reflect")
    convkit.set_workspace_limit(64 * 1024)
    tiled = ops.conv_backward(dy, X, W, padding=(1, 0), padding_mode="reflect")
    assert np.array_equal(expected[0], tiled[0])
    assert np.allclose(expected[1], tiled[1], rtol=0, atol=1e-6 * np.abs(expected[1]).max())


# ---- conv_transpose and separable ----
@raises(ValueError, "output_padding", "2")
def conv_transpose_output_padding_too_large():
    ops.conv_transpose(X, f32(3, 3, 6, 4), stride=2, output_padding=2)


@raises(ValueError, "padding", "crops")
def conv_transpose_crop_everything():
    ops.conv_transpose(X, f32(3, 3, 6, 4), padding=10)


@raises(ValueError, "w", "(3, 3, 6, 5)")
def conv_transpose_weight_mismatch():
    ops.conv_transpose(X, f32(3, 3, 6, 5))


@raises(ValueError, "stride", "0")
def conv_transpose_stride_zero():
    ops.conv_transpose(X, f32(3, 3, 6, 4), stride=0)


@works
def conv_transpose_empty_batch():
    x = f32(0, 4, 4, 4)
    y = ops.conv_transpose(x, f32(3, 3, 6, 4), stride=2)
    dx, dw, db = ops.conv_transpose_backward(np.zeros(y.shape, np.float32), x, f32(3, 3, 6, 4), stride=2)
    assert y.shape == (0, 9, 9, 6) and dx.shape == x.shape and not dw.any() and not db.any()


@raises(ValueError, "depthwise_w", "(3, 3, 2, 4)")
def separable_depthwise_weight_shape():
    ops.separable_conv(X, f32(3, 3, 2, 4), f32(1, 1, 4, 8))


@raises(ValueError, "pointwise_w", "(3, 3, 4, 8)")
def separable_pointwise_not_1x1():
    ops.separable_conv(X, f32(3, 3, 1, 4), f32(3, 3, 4, 8))


@raises(ValueError, "stride", "-1")
def separable_stride_negative():
    ops.separable_conv(X, f32(3, 3, 1, 4), f32(1, 1, 4, 8), stride=-1)


# ---- pooling ----
@raises(ValueError, "pool_size", "0")
def max_pool_size_zero():
    ops.max_pool(X, 0)


@raises(ValueError, "pool_size", "-3")
def avg_pool_size_negative():
    ops.avg_pool(X, -3)


@raises(ValueError, "stride", "0")
def max_pool_stride_zero():
    ops.max_pool(X, 2, stride=0)


@raises(ValueError, "padding", "-8000000000000000000")
def max_pool_padding_absurd():
    ops.max_pool(X, 2, padding=-BIG)


@raises((ValueError, MemoryError), "padding", "8000000000000000000")
def avg_pool_padding_absurd():
    ops.avg_pool(X, 2, padding=BIG)


@raises(ValueError, "pool_size", "(2, 2, 2)")
def max_pool_size_tuple_too_long():
    ops.max_pool(X, (2, 2, 2))


@raises(ValueError, "pool_size", "()")
def max_pool_size_tuple_empty():
    ops.max_pool(X, ())


@raises(ValueError, "pool", "9")
def max_pool_window_larger_than_input():
    ops.max_pool(X, 9)


@raises(ValueError, "x", "(8, 4)")
def max_pool_rank_too_low():
    ops.max_pool(f32(8, 4), 2)


@raises(TypeError, "x", "int32")
def avg_pool_int_input():
    ops.avg_pool(np.ones((2, 8, 8, 4), np.int32), 2)


@raises(ValueError, "dy", "(2, 3, 3, 4)")
def max_pool_backward_dy_mismatch():
    ops.max_pool_backward(f32(2, 3, 3, 4), X, 2)


@raises(ValueError, "indices")
def max_pool_backward_indices_out_of_range():
    y, idx = ops.max_pool(X, 2, return_indices=True)
    ops.max_pool_backward(np.ones_like(y), X, 2, indices=idx + 10**6)


@raises(ValueError, "output_size", "0")
def adaptive_pool_output_zero():
    ops.adaptive_avg_pool(X, 0)


@works
def max_pool_nan_index_valid():
    x = X.copy()
    x[:, :, :, :] = np.nan
    x[0, 1, 1, 0] = np.inf
    y, idx = ops.max_pool(x, 2, return_indices=True)
    assert idx.min() >= 0 and idx.max() < 64 and np.isnan(y[1]).all()
    dx = ops.max_pool_backward(np.ones_like(y), x, 2, indices=idx)
    assert dx.sum() == y.size


@works
def pool_empty_batch():
    x = f32(0, 8, 8, 4)
    y, idx = ops.max_pool(x, 2, return_indices=True)
    assert y.shape == idx.shape == (0, 4, 4, 4)
    assert ops.max_pool_backward(y, x, 2).shape == x.shape
    assert ops.avg_pool_backward(ops.avg_pool(x, 3, padding=1), x.shape, 3, padding=1).shape == x.shape
    assert ops.global_avg_pool(x).shape == (0, 4)


# ---- normalization ----
@raises(ValueError, "groups", "3")
def group_norm_groups_not_dividing():
    ops.group_norm(X, 3)


@raises(ValueError, "groups", "0")
def group_norm_groups_zero():
    ops.group_norm(X, 0)


@raises(ValueError, "gamma", "(5,)")
def batch_norm_gamma_wrong_shape():
    ops.batch_norm(X, f32(5))


@raises(ValueError, "eps", "-1")
def batch_norm_eps_negative():
    ops.batch_norm(X, eps=-1.0)


@raises(ValueError, "momentum", "2")
def batch_norm_momentum_out_of_range():
    ops.batch_norm(X, running_mean=np.zeros(4), running_var=np.ones(4), momentum=2.0)


@raises(ValueError, "normalized_ndim", "5")
def layer_norm_ndim_too_large():
    ops.layer_norm(X, 5)


@raises(ValueError, "size", "0")
def lrn_size_zero():
    ops.local_response_norm(X, 0)


@raises(TypeError, "x", "float16")
def batch_norm_float16():
    ops.batch_norm(X.astype(np.float16))


@raises(ValueError, "dy", "(2, 8, 8, 3)")
def batch_norm_backward_dy_mismatch():
    _, stats = ops.batch_norm(X)
    ops.batch_norm_backward(f32(2, 8, 8, 3), X, None, stats.mean, stats.inv_std)


@works
def norm_nan_propagates():
    x = X.copy()
    x[0, 0, 0, 0] = np.nan
    y, _ = ops.batch_norm(x)
    assert np.isnan(y[..., 0]).all() and np.isfinite(y[..., 1:]).all()


@works
def layer_norm_empty_batch():
    x = f32(0, 8, 8, 4)
    y, stats = ops.layer_norm(x, 3)
    dx, _, _ = ops.layer_norm_backward(y, x, 3, None, stats.mean, stats.inv_std)
    assert y.shape == x.shape and dx.shape == x.shape


# ---- gemm / matmul ----
@raises(ValueError, "a", "(3, 4)", "b", "(5, 2)")
def matmul_inner_mismatch():
    ops.matmul(f32(3, 4), f32(5, 2))


@raises(ValueError, "a", "(2, 3, 4)")
def matmul_rank_three():
    ops.matmul(f32(2, 3, 4), f32(4, 2))


@raises(TypeError, "a", "bool")
def matmul_bool():
    ops.matmul(np.ones((3, 3), bool), f32(3, 3))


@raises(ValueError, "c", "(3, 3)")
def gemm_output_shape_mismatch():
    ops.gemm(f32(3, 4), f32(4, 2), np.zeros((3, 3), np.float32))


@raises(ValueError, "bias", "(3,)")
def gemm_bias_mismatch():
    ops.gemm(f32(3, 4), f32(4, 2), bias=f32(3))


@raises(ValueError, "alpha", "nan")
def gemm_alpha_nan():
    ops.gemm(f32(3, 4), f32(4, 2), alpha=float("nan"))


@raises(ValueError, "a.shape=(1099511627776, 0)", "elements")
def matmul_output_elements_overflow_int64():
    # zero-size operands, a 2**80-element product
    ops.matmul(np.empty((2**40, 0), np.float32), np.empty((0, 2**40), np.float32))


@raises(MemoryError, "b.shape=(0, 1099511627776)", "bytes")
def matmul_output_larger_than_memory():
    ops.matmul(np.empty((2**20, 0), np.float32), np.empty((0, 2**40), np.float32))


@works
def matmul_empty():
    assert ops.matmul(f32(0, 4), f32(4, 3)).shape == (0, 3)
    assert not ops.matmul(f32(3, 0), f32(0, 2)).any()


# ---- losses ----
@raises(ValueError, "targets", "7")
def cross_entropy_label_too_large():
    ops.softmax_cross_entropy(f32(4, 5), np.array([0, 1, 7, 2]))


@raises(ValueError, "labels", "-3")
def nll_label_negative():
    ops.nll_loss(f32(4, 5), np.array([0, 1, -3, 2]))


@raises(TypeError, "targets", "float64")
def cross_entropy_float_labels_wrong_shape():
    ops.softmax_cross_entropy(f32(4, 5), np.array([0.0, 1.0, 2.0, 3.0]))


@raises(ValueError, "reduction", "'avg'")
def mse_unknown_reduction():
    ops.mse_loss(f32(4, 5), f32(4, 5), reduction="avg")


@raises(ValueError, "y_true", "(4, 4)")
def mse_shape_mismatch():
    ops.mse_loss(f32(4, 5), f32(4, 4))


@raises(ValueError, "weight", "(4,)")
def cross_entropy_weight_length():
    ops.softmax_cross_entropy(f32(4, 5), np.array([0, 1, 2, 3]), weight=np.ones(4, np.float32))


@raises(ValueError, "label_smoothing", "1.5")
def cross_entropy_smoothing_out_of_range():
    ops.softmax_cross_entropy(f32(4, 5), np.array([0, 1, 2, 3]), label_smoothing=1.5)


@works
def cross_entropy_empty_batch():
    loss, grad = ops.softmax_cross_entropy(f32(0, 5), np.zeros(0, np.int64), reduction="sum")
    assert float(loss) == 0.0 and grad.shape == (0, 5)


# ---- preprocessing ----
@raises(TypeError, "x", "bool")
def standardization_bool_input():
    ChannelStandardization().fit(np.ones((4, 3, 3, 2), bool))


@raises(ValueError, "x", "(4,)")
def standardization_rank_one():
    ChannelStandardization().fit(np.ones(4))


@raises(ValueError, "x", "(4, 3, 3, 5)")
def standardization_transform_channel_mismatch():
    ChannelStandardization().fit(np.ones((4, 3, 3, 2))).transform(np.ones((4, 3, 3, 5)))


# ---- layers ----
@raises(ValueError, "units", "0")
def dense_units_zero():
    layers.Dense(0)


@raises(TypeError, "units", "2.5")
def dense_units_float():
    layers.Dense(2.5)


@raises(ValueError, "filters", "-3")
def conv2d_filters_negative():
    layers.Conv2D(-3, 3)


@raises(ValueError, "strides", "0")
def conv2d_strides_zero():
    layers.Conv2D(4, 3, strides=0)(X)


@raises(ValueError, "groups", "3")
def conv2d_groups_not_dividing():
    layers.Conv2D(6, 3, groups=3)(X)


@raises(ValueError, "input_shape", "(8, 4)")
def conv2d_input_rank_too_low():
    layers.Conv2D(4, 3)(f32(2, 8, 4))


@raises(ValueError, "pool_size", "0")
def max_pooling_layer_size_zero():
    layers.MaxPooling2D(0)(X)


@raises(ValueError, "rate", "1.5")
def dropout_rate_over_one():
    layers.Dropout(1.5)


@raises(TypeError, "dtype", "int64")
def dense_int_input():
    layers.Dense(2)(np.ones((2, 3), np.int64))


@raises(ValueError, "(2, 5)")
def sequential_input_features_mismatch():
    convkit.Sequential([layers.Dense(2, input_shape=(4,))]).predict(f32(2, 5))


@works
def layers_empty_batch_forward_and_backward():
    # Flatten reshaped with -1, which NumPy cannot infer for 0 elements (ValueError; found by this audit)
    model = convkit.Sequential([
        layers.Conv2D(4, 3, padding="same", input_shape=(8, 8, 4)), layers.DepthwiseConv2D(3),
        layers.MaxPooling2D(2), layers.LayerNormalization(), layers.Dropout(0.5), layers.Flatten(), layers.Dense(5)])
    y = model.forward(f32(0, 8, 8, 4), training=True)
    dx = model.backward(np.ones_like(y))
    assert y.shape == (0, 5) and dx.shape == (0, 8, 8, 4)
    assert all(np.array_equal(p.grad, np.zeros(p.shape)) for p in model.parameters())


# ---- regressions found by the fuzzer (tests/fuzz) ----
@works
def lrn_window_wider_than_the_channels_completes():
    # size=8e18 looped over every offset of the window in the core (hours) and overflowed its cost estimate
    y = ops.local_response_norm(X, 8 * 10**18)
    dx = ops.local_response_norm_backward(np.ones_like(X), X, 8 * 10**18)
    assert np.allclose(y, X) and np.allclose(dx, 1.0)


@raises(ValueError, "output", "elements")
def adaptive_pool_output_size_absurd():
    # built 8e18 Python windows per axis (hung, found by fuzzing)
    ops.adaptive_avg_pool(f32(3, 6, 4, 4), 8 * 10**18)


@raises(MemoryError, "output", "bytes")
def adaptive_pool_output_larger_than_memory():
    ops.adaptive_max_pool(f32(1, 6, 2), 2**52)


@raises(MemoryError, "output_size=4611686018427387904", "bytes")
def adaptive_pool_absurd_output_size_on_empty_batch():
    # an empty batch still built 2**62 windows (hung, found by fuzzing)
    ops.adaptive_max_pool(f32(0, 1, 1), 2**62)


@raises(MemoryError, "windows", "output_size=2147483648", "274877906944 bytes")
def adaptive_pool_windows_over_workspace_limit():
    # 2**31 windows would have taken ~300 GB of Python tuples, even for an empty batch (found by fuzzing)
    ops.adaptive_avg_pool(f32(0, 4, 1), 2**31)


def _nested(depth: int):
    value = 1
    for _ in range(depth):
        value = (value, 2)
    return value


@raises(ValueError, "pool_size", "(...)")
def pool_size_nested_thousands_deep():
    # a 74-deep tuple overflowed the stack of the options cache's check (RecursionError, found by fuzzing);
    # 5000 deep, even the repr of the error message did
    ops.max_pool(X, _nested(5000))


@raises(ValueError, "stride", "(...)")
def conv_stride_nested_thousands_deep():
    ops.conv(X, W, stride=_nested(5000))


@raises(TypeError, "groups", "(...)")
def group_norm_groups_nested_thousands_deep():
    ops.group_norm(X, _nested(5000))


# ---- the core's own guards, reached by calling convkit._C directly (no Python validation) ----
def _core_conv(stride=(1, 1, 1), pad_before=(0, 0, 0), mode="zeros", groups=1, out_width=3):
    x, w = np.ones((1, 1, 1, 5, 2)), np.ones((1, 1, 3, 2, 2))
    convkit._C.conv_forward(x, w, None, np.empty((1, 1, 1, out_width, 2)), stride, (1, 1, 1), pad_before, groups,
                            mode, "none", 0.0)


@raises(ValueError, "conv extent", "overflows int64")
def core_conv_extent_overflow():
    _core_conv(stride=(1, 1, 2**62))


@raises(ValueError, "padding too large", "axis 2")
def core_conv_reflect_padding_past_the_input():
    _core_conv(pad_before=(0, 0, 5), mode="reflect", out_width=13)


@raises(ValueError, "x, w, y and groups do not fit")
def core_conv_groups_not_matching_w():
    _core_conv(groups=2)


@raises(ValueError, "padding non-negative", "pad_before -1")
def core_conv_negative_padding():
    _core_conv(pad_before=(0, 0, -1), out_width=5)


@works
def depthwise_backward_with_stride_int64_max():
    # segfaulted: the tap runs of backward data computed first + stride past int64 (found by fuzzing)
    x, w = f32(5, 4, 3), f32(3, 1, 3)
    options = dict(stride=2**63 - 1, padding=3, dilation=3, groups=3)
    y = ops.conv(x, w, **options)
    dx, dw, db = ops.conv_backward(np.ones_like(y), x, w, **options)
    assert y.shape == (5, 1, 3) and dx.shape == x.shape and dw.shape == w.shape
    # only the output pixel at 0 exists: its taps at -3, 0, 3 read x[0] and x[3]
    expected_dx = np.zeros_like(x)
    expected_dx[:, 0], expected_dx[:, 3] = w[1, 0], w[2, 0]
    assert np.array_equal(dx, expected_dx)
