"""Factorised convolutions: each equals one full convolution with the product kernel (checked against the
float64 reference), and their gradients pass finite differences."""
import numpy as np
import pytest
from conv_testing import MODES, check_by_finite_differences

from convkit import ops
from convkit.reference import conv_reference


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_separable_conv_is_conv_with_product_kernel(mode, multiplier):
    rng = np.random.default_rng(multiplier)
    channels, out = 3, 4
    x = rng.standard_normal((2, 7, 6, channels))
    depthwise = rng.standard_normal((3, 3, 1, channels * multiplier))
    pointwise = rng.standard_normal((1, 1, channels * multiplier, out))
    b = rng.standard_normal(out)
    options = dict(stride=2, padding=1, dilation=(1, 2), padding_mode=mode)
    # output channel o sums over (c, q): depthwise[.., c*m + q] * pointwise[c*m + q, o]
    full = np.einsum("hwcq,cqo->hwco", depthwise[:, :, 0].reshape(3, 3, channels, multiplier),
                     pointwise[0, 0].reshape(channels, multiplier, out))
    expected = conv_reference(x, full, b, **options)
    np.testing.assert_allclose(ops.separable_conv(x, depthwise, pointwise, b, **options), expected, atol=1e-12)
    y32 = ops.separable_conv(x.astype(np.float32), depthwise.astype(np.float32), pointwise.astype(np.float32),
                             b.astype(np.float32), **options, activation="relu")
    np.testing.assert_allclose(y32, np.maximum(expected, 0), atol=1e-4)
    check_by_finite_differences(
        lambda x, dw, pw, b: ops.separable_conv(x, dw, pw, b, **options),
        lambda dy: ops.separable_conv_backward(dy, x, depthwise, pointwise, **options),
        (x, depthwise, pointwise, b), rng,
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", ["same", ((2, 1), (0, 2))])
def test_spatially_separable_conv_is_conv_with_product_kernel(mode, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 7, 3))
    w_rows, w_cols = rng.standard_normal((3, 1, 3, 2)), rng.standard_normal((1, 4, 2, 5))
    b = rng.standard_normal(5)
    options = dict(stride=(2, 1), padding=padding, dilation=(1, 2), padding_mode=mode)
    full = np.einsum("hcm,wmo->hwco", w_rows[:, 0], w_cols[0])
    expected = conv_reference(x, full, b, **options)
    got = ops.spatially_separable_conv2d(x, w_rows, w_cols, b, **options)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    check_by_finite_differences(
        lambda x, wr, wc, b: ops.spatially_separable_conv2d(x, wr, wc, b, **options),
        lambda dy: ops.spatially_separable_conv2d_backward(dy, x, w_rows, w_cols, **options),
        (x, w_rows, w_cols, b), rng,
    )


@pytest.mark.parametrize("mode", MODES)
def test_flattened_conv_is_conv_with_rank_one_kernels(mode):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 7, 3))
    w_channels = rng.standard_normal((1, 1, 3, 4))
    w_rows, w_cols = rng.standard_normal((3, 1, 1, 4)), rng.standard_normal((1, 3, 1, 4))
    b = rng.standard_normal(4)
    full = np.einsum("co,ho,wo->hwco", w_channels[0, 0], w_rows[:, 0, 0], w_cols[0, :, 0])
    options = dict(padding="same", padding_mode=mode)
    expected = conv_reference(x, full, b, **options)
    np.testing.assert_allclose(ops.flattened_conv2d(x, w_channels, w_rows, w_cols, b, **options), expected,
                               atol=1e-12)
    check_by_finite_differences(
        lambda x, wch, wr, wc, b: ops.flattened_conv2d(x, wch, wr, wc, b, **options),
        lambda dy: ops.flattened_conv2d_backward(dy, x, w_channels, w_rows, w_cols, **options),
        (x, w_channels, w_rows, w_cols, b), rng,
    )


def test_composite_need_and_errors():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 5, 5, 2))
    depthwise, pointwise = rng.standard_normal((3, 3, 1, 2)), rng.standard_normal((1, 1, 2, 3))
    dy = rng.standard_normal((1, 3, 3, 3))
    full = ops.separable_conv_backward(dy, x, depthwise, pointwise)
    only_b = ops.separable_conv_backward(dy, x, depthwise, pointwise, need="b")
    assert only_b[:3] == (None, None, None)
    np.testing.assert_allclose(only_b[3], full[3])
    only_x = ops.separable_conv_backward(dy, x, depthwise, pointwise, need="x")
    np.testing.assert_array_equal(only_x[0], full[0])
    assert only_x[1:] == (None, None, None)
    with pytest.raises(ValueError, match="depthwise_w must be"):
        ops.separable_conv(x, rng.standard_normal((3, 3, 2, 2)), pointwise)
    with pytest.raises(ValueError, match="pointwise_w must be"):
        ops.separable_conv(x, depthwise, rng.standard_normal((3, 3, 2, 3)))
    with pytest.raises(ValueError, match="w_rows must be"):
        ops.spatially_separable_conv2d(x, rng.standard_normal((3, 3, 2, 2)), rng.standard_normal((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="w_channels must be"):
        ops.flattened_conv2d(x, depthwise, depthwise, depthwise)
