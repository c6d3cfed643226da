"""Convolution backward and transposed convolution: against the float64 reference, by finite differences
of the compiled kernels, and for thread-count independence."""
import zlib

import numpy as np
import pytest
from conv_testing import MODES, check_by_finite_differences, conv_cases, sum_tolerance
from conftest import available_kernels
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.reference import conv_backward_reference, conv_transpose_reference

GEMM_KERNELS = [(k.name, np.float32 if k.dtype == "f32" else np.float64) for k in available_kernels("gemm")]


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("kernel,dtype", GEMM_KERNELS, ids=[name for name, _ in GEMM_KERNELS])
@given(case=conv_cases(), strided=st.booleans(), seed=st.integers(0, 2**31))
def test_conv_backward_matches_reference(kernel, dtype, case, strided, seed):
    x_shape, w_shape, options = case
    rng = np.random.default_rng(seed)
    x, w = random(rng, x_shape, dtype), random(rng, w_shape, dtype)
    dy = random(rng, ops.conv(x, w, **options).shape, dtype)
    if strided:  # non-contiguous views with the same values
        dy = np.repeat(dy, 2, axis=-1)[..., ::2]
    with convkit.use_kernel(kernel):
        dx, dw, db = ops.conv_backward(dy, x, w, **options)
    ref_dx, ref_dw, ref_db = conv_backward_reference(dy, x, w, **options)
    assert (dx.dtype, dw.dtype, db.dtype) == (dtype,) * 3
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (w.shape[-1],)
    pixels = int(np.prod(dy.shape[:-1]))
    # dx sums prod(kernel) * C_out/groups products per tap it receives from (reflect/circular padding can
    # fold a few taps onto one sample); dw sums over every output pixel.
    dx_terms = 3 * int(np.prod(w.shape[:-2])) * w.shape[-1]
    dy_max = np.abs(dy).max(initial=0)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=sum_tolerance(dtype, dx_terms, dy_max * np.abs(w).max()))
    np.testing.assert_allclose(dw, ref_dw, rtol=0,
                               atol=sum_tolerance(dtype, pixels, dy_max * np.abs(x).max(initial=0)))
    np.testing.assert_allclose(db, ref_db, rtol=0, atol=sum_tolerance(dtype, pixels, dy_max))


CONV_FAMILIES = {
    "plain": ((2, 7, 6, 3), (3, 3, 3, 4), {}),
    "same-even-kernel": ((2, 6, 7, 2), (2, 4, 2, 3), dict(padding="same")),
    "stride-2": ((2, 9, 8, 3), (3, 3, 3, 5), dict(stride=2, padding=1)),
    "dilation": ((1, 9, 9, 2), (3, 2, 2, 3), dict(dilation=(2, 3), padding=((2, 1), (0, 3)))),
    "groups": ((2, 6, 6, 6), (3, 3, 2, 9), dict(groups=3, padding="same")),
    "pointwise": ((3, 5, 4, 6), (1, 1, 3, 4), dict(groups=2)),
    "conv1d": ((3, 13, 3), (5, 3, 2), dict(stride=3, padding=2)),
    "conv3d": ((2, 4, 5, 4, 2), (2, 3, 2, 2, 3), dict(padding=1, stride=(1, 2, 1))),
    **{f"mode-{m}": ((2, 6, 5, 2), (3, 3, 2, 3), dict(padding=2, stride=2, padding_mode=m)) for m in MODES[1:]},
    "circular-full-wrap": ((1, 4, 3, 2), (3, 3, 2, 2), dict(padding=3, padding_mode="circular")),
}


@pytest.mark.parametrize("name", CONV_FAMILIES)
def test_conv_backward_by_finite_differences(name):
    x_shape, w_shape, options = CONV_FAMILIES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[-1])
    check_by_finite_differences(
        lambda x, w, b: ops.conv(x, w, b, **options),
        lambda dy: ops.conv_backward(dy, x, w, **options),
        (x, w, b), rng,
    )


# Stride 1, zero padding and >= 16 channels per group: dx runs as a convolution with the flipped kernel.
WIDE_FAMILIES = {
    "same-3x3": ((2, 6, 5, 16), (3, 3, 16, 8), dict(padding="same")),
    "even-kernel-asymmetric": ((1, 7, 6, 17), (2, 4, 17, 5), dict(padding=((1, 0), (3, 1)))),
    "dilation-groups": ((2, 9, 8, 32), (3, 2, 16, 6), dict(dilation=(2, 3), padding=2, groups=2)),
    "conv1d-valid": ((3, 11, 20), (4, 20, 7), {}),
    "conv3d": ((1, 4, 5, 6, 16), (2, 3, 3, 16, 4), dict(padding=(0, 1, 1))),
    "pad-beyond-kernel": ((1, 5, 5, 16), (2, 2, 16, 3), dict(padding=2)),
}


@pytest.mark.parametrize("name", WIDE_FAMILIES)
def test_wide_conv_backward_matches_reference(name):
    x_shape, w_shape, options = WIDE_FAMILIES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    dy = rng.standard_normal(ops.conv(x, w, **options).shape)
    for got, ref in zip(ops.conv_backward(dy, x, w, **options), conv_backward_reference(dy, x, w, **options)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11)


TRANSPOSE_FAMILIES = {
    "plain": ((2, 4, 5, 3), (3, 3, 2, 3), {}),
    "stride-2-output-padding": ((2, 4, 3, 2), (3, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
    "same": ((1, 5, 4, 2), (4, 4, 3, 2), dict(stride=2, padding="same")),
    "dilation-groups": ((2, 3, 4, 4), (2, 3, 3, 4), dict(dilation=(2, 1), groups=2, stride=(1, 3), padding=(1, 2))),
    "conv1d": ((2, 6, 2), (4, 3, 2), dict(stride=3, output_padding=2)),
    "conv3d": ((1, 3, 2, 3, 2), (2, 2, 3, 2, 2), dict(stride=2, padding=((0, 1), (1, 0), (1, 1)))),
}


@pytest.mark.parametrize("name", TRANSPOSE_FAMILIES)
def test_conv_transpose_matches_reference_and_finite_differences(name):
    x_shape, w_shape, options = TRANSPOSE_FAMILIES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[-2] * options.get("groups", 1))
    np.testing.assert_allclose(ops.conv_transpose(x, w, b, **options),
                               conv_transpose_reference(x, w, b, **options), rtol=0, atol=1e-12)
    y32 = ops.conv_transpose(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **options)
    np.testing.assert_allclose(y32, conv_transpose_reference(x, w, b, **options), rtol=0, atol=1e-4)
    check_by_finite_differences(
        lambda x, w, b: ops.conv_transpose(x, w, b, **options),
        lambda dy: ops.conv_transpose_backward(dy, x, w, **options),
        (x, w, b), rng,
    )


def test_conv_transpose_is_the_adjoint_of_conv():
    rng = np.random.default_rng(11)
    options = dict(stride=(2, 3), padding=((1, 0), (2, 2)), dilation=(1, 2), groups=2)
    y_like = rng.standard_normal((2, 9, 14, 4))  # the conv's input, the transposed conv's output
    w = rng.standard_normal((3, 3, 2, 6))
    x_like = rng.standard_normal(ops.conv(y_like, w, **options).shape)
    out_size = ops.conv_transpose(x_like, w, **options).shape
    op = tuple(n - m for n, m in zip(y_like.shape[1:3], out_size[1:3]))  # sizes a strided conv cannot tell apart
    transposed = ops.conv_transpose(x_like, w, output_padding=op, **options)
    assert transposed.shape == y_like.shape
    np.testing.assert_allclose(np.vdot(ops.conv(y_like, w, **options), x_like), np.vdot(y_like, transposed),
                               rtol=1e-12)


def test_pytorch_output_size_rule():
    x, w = np.ones((1, 5, 7, 1)), np.ones((3, 3, 1, 1))
    # (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
    assert ops.conv_transpose(x, w, stride=2, padding=1, output_padding=1).shape == (1, 10, 14, 1)
    assert ops.conv_transpose(x, w, stride=2, padding="same").shape == (1, 10, 14, 1)
    assert ops.conv_transpose(x, w, stride=3, dilation=2).shape == (1, 17, 23, 1)


@pytest.mark.parametrize("batch", [1, 4, 12], ids=["one-image", "images-shared", "many-images"])
def test_backward_does_not_depend_on_thread_count(batch):
    rng = np.random.default_rng(batch)
    x, w = random(rng, (batch, 20, 21, 8), np.float32), random(rng, (3, 3, 4, 16), np.float32)
    options = dict(padding="same", groups=2, padding_mode="reflect")
    dy = random(rng, ops.conv2d(x, w, **options).shape, np.float32)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(ops.conv_backward(dy, x, w, **options))
    for result in results[1:]:
        for got, first in zip(result, results[0]):
            np.testing.assert_array_equal(got, first)


def test_need_selects_gradients():
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 2))
    dy = rng.standard_normal((2, 3, 3, 2))
    dx, dw, db = ops.conv_backward(dy, x, w)
    only_w = ops.conv_backward(dy, x, w, need=("w",))
    assert only_w[0] is None and only_w[2] is None
    np.testing.assert_array_equal(only_w[1], dw)
    only_b = ops.conv_backward(dy, x, w, need="b")
    assert only_b[:2] == (None, None)
    np.testing.assert_allclose(only_b[2], db, rtol=1e-15)
    assert ops.conv_backward(dy, x, w, need=()) == (None, None, None)
    np.testing.assert_array_equal(ops.conv_backward(dy, x, w, need=["x"])[0], dx)


def test_empty_batch_gradients_are_zero():
    x, w = np.ones((0, 5, 5, 3), np.float32), np.ones((3, 3, 3, 2), np.float32)
    dx, dw, db = ops.conv_backward(np.ones((0, 3, 3, 2), np.float32), x, w)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


def test_db_is_accurate_for_long_sums():
    dy = np.full((16, 64, 64, 3), 0.1, np.float32)  # 65536 terms: a float32 running sum drifts by ~1e-3
    _, _, db = ops.conv_backward(dy, np.zeros((16, 64, 64, 1), np.float32), np.zeros((1, 1, 1, 3), np.float32),
                                 need="b")
    np.testing.assert_allclose(db, np.float64(np.float32(0.1)) * 65536, rtol=1e-7)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(dy=np.ones((1, 2, 2, 2))), ValueError, r"dy must have the output's shape \(1, 3, 3, 2\)"),
        (dict(need=("x", "weights")), ValueError, "need must name gradients"),
        (dict(need=3), TypeError, "need must be a collection"),
        (dict(dy=np.ones((1, 3, 3, 2), np.int32)), TypeError, "dy must be a float32 or float64"),
        (dict(stride=0), ValueError, "stride"),
    ],
)
def test_bad_backward_arguments(kwargs, error, match):
    args = dict(dy=np.ones((1, 3, 3, 2)), x=np.ones((1, 5, 5, 3)), w=np.ones((3, 3, 3, 2)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ops.conv_backward(args.pop("dy"), args.pop("x"), args.pop("w"), **args)


def test_bad_transpose_arguments():
    x, w = np.ones((1, 4, 4, 2)), np.ones((3, 3, 3, 2))
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        ops.conv_transpose(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 6, 6, 3\)"):
        ops.conv_transpose_backward(np.ones((1, 5, 5, 3)), x, w)
    with pytest.raises(ValueError, match="C_in = 2"):
        ops.conv_transpose(x, np.ones((3, 3, 3, 4)))
