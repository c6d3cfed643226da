"""Convolution forward (im2col + GEMM) against the independent NumPy float64 reference."""
import numpy as np
import pytest
from conv_testing import conv_cases, tolerance
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.reference import conv_reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=conv_cases(), use_bias=st.booleans(), strided_input=st.booleans(), seed=st.integers(0, 2**31))
def test_conv_matches_reference(dtype, case, use_bias, strided_input, seed):
    x_shape, w_shape, options = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    if strided_input:  # a non-contiguous view with the same values
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype) if use_bias else None
    got = ops.conv(x, w, b, **options)
    ref = conv_reference(x, w, b, **options)
    assert got.dtype == dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(dtype, x, w, options["groups"]))


def test_fused_activation():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 6, 6, 3)), rng.standard_normal((3, 3, 3, 5)), rng.standard_normal(5)
    ref = conv_reference(x, w, b, padding="same")
    np.testing.assert_allclose(ops.conv2d(x, w, b, padding="same", activation="relu"), np.maximum(ref, 0), atol=1e-12)
    leaky = ops.conv2d(x, w, b, padding="same", activation="leaky_relu", negative_slope=0.2)
    np.testing.assert_allclose(leaky, np.where(ref < 0, 0.2 * ref, ref), atol=1e-12)


def test_course_examples():
    x = np.array([40, 50, 70, 80, 90, 10, 20, 30, 40], np.float64).reshape(1, 9, 1)
    w = np.array([0.2, -0.3, 0.4]).reshape(3, 1, 1)
    np.testing.assert_allclose(ops.conv1d(x, w).ravel(), [21, 21, 26, -7, 23, 8, 11])
    np.testing.assert_allclose(ops.conv1d(x, w, stride=2).ravel(), [21, 26, 23, 11])
    image = np.arange(9.0).reshape(1, 3, 3, 1)
    np.testing.assert_allclose(ops.conv2d(image, np.arange(4.0).reshape(2, 2, 1, 1)).ravel(), [19, 25, 37, 43])
    signal = np.array([10, 20, 30, 40, 50], np.float64).reshape(1, 5, 1)
    k = np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1)
    expected = {"zeros": [8, 14, 20, 26, 14], "reflect": [10, 14, 20, 26, 26], "replicate": [9, 14, 20, 26, 29]}
    for mode, values in expected.items():
        np.testing.assert_allclose(ops.conv1d(signal, k, padding="same", padding_mode=mode).ravel(), values)


def test_rank_invariants_and_groups():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 11, 4)), rng.standard_normal((3, 2, 6))
    one_d = ops.conv1d(x, w, stride=2, padding="same", groups=2)
    as_2d = ops.conv2d(x[:, None], w[None], stride=(1, 2), padding=((0, 0), (1, 1)), groups=2)
    np.testing.assert_allclose(one_d, as_2d[:, 0], atol=1e-12)
    x2, w2 = rng.standard_normal((2, 7, 6, 4)), rng.standard_normal((3, 3, 2, 6))
    as_3d = ops.conv3d(x2[:, None], w2[None], padding=(0, 1, 1), groups=2)
    np.testing.assert_allclose(ops.conv2d(x2, w2, padding=1, groups=2), as_3d[:, 0], atol=1e-12)
    # grouped == the concatenation of independent per-group convolutions
    per_group = [ops.conv2d(x2[..., 2 * g:2 * g + 2], w2[..., 3 * g:3 * g + 3], padding=1) for g in range(2)]
    np.testing.assert_allclose(ops.conv2d(x2, w2, padding=1, groups=2), np.concatenate(per_group, -1), atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 30, 30, 8), (64, 5, 5, 8)], ids=["few-tiles", "many-tiles"])
def test_conv_does_not_depend_on_thread_count(shape):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(shape).astype(np.float32), rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(ops.conv2d(x, w, padding="same"))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_empty_batch_and_pointwise():
    w = np.ones((1, 1, 3, 2), np.float32)
    assert ops.conv2d(np.zeros((0, 4, 4, 3), np.float32), w).shape == (0, 4, 4, 2)
    x = np.random.default_rng(7).standard_normal((2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(ops.conv2d(x, w), conv_reference(x, w), atol=1e-5)


BAD_CONV = [
    (dict(stride=0), ValueError, "stride"),
    (dict(dilation=(1, -1)), ValueError, "dilation"),
    (dict(groups=2), ValueError, "groups"),
    (dict(padding=-8 * 10**18), ValueError, "padding"),
    (dict(padding=4, padding_mode="reflect"), ValueError, "reflect"),
    (dict(padding_mode="mirror"), ValueError, "mirror"),
    (dict(activation="tanh"), ValueError, "tanh"),
]


@pytest.mark.parametrize("options,error,match", BAD_CONV)
def test_bad_conv_arguments(options, error, match):
    x, w = np.ones((1, 4, 4, 3), np.float32), np.ones((3, 3, 3, 2), np.float32)
    with pytest.raises(error, match=match):
        ops.conv2d(x, w, **options)


def test_bad_conv_inputs():
    w = np.ones((3, 3, 3, 2), np.float32)
    with pytest.raises(TypeError, match="int64"):
        ops.conv2d(np.ones((1, 4, 4, 3), np.int64), w)
    with pytest.raises(ValueError, match="conv2d expects x of rank 4"):
        ops.conv2d(np.ones((4, 4, 3), np.float32), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        ops.conv2d(np.ones((1, 4, 4, 3), np.float32), w, np.ones(3, np.float32))
