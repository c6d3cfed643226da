"""The direct convolution for few channels (groups == 1, C_in and C_out <= 16: csrc/ops/conv_direct.cc and
the dconv kernels): forward and the weight/bias gradients against the independent float64 references in
convkit.reference, every padding form and mode, strides, dilations, ranks 1-3, and thread-count
independence. (dx of such layers stays with im2col + col2im, which test_conv_backward.py checks.)"""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.conv_spec import PADDING_MODES, conv_spec
from convkit.reference import conv_backward_reference, conv_reference

from conftest import available_kernels
from conv_testing import check_by_finite_differences

DCONV_KERNELS = available_kernels("dconv")
DTYPES = {"f32": np.float32, "f64": np.float64}


@st.composite
def small_channel_cases(draw):
    """(x shape, w shape, options): channel counts around the vector widths (1, 4, 6, 8, 9, 16)."""
    rank = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(PADDING_MODES))
    spatial = [draw(st.integers(1, 12 if rank < 3 else 5)) for _ in range(rank)]
    kernel = [draw(st.integers(1, 5)) for _ in range(rank)]
    max_pad = [{"reflect": n - 1, "circular": n}.get(mode, 3) for n in spatial]
    form = draw(st.sampled_from(["valid", "same", "int", "pairs"]))
    if form in ("valid", "same"):
        padding = form
    elif form == "int":
        padding = draw(st.integers(0, min(max_pad)))
    else:
        padding = tuple((draw(st.integers(0, m)), draw(st.integers(0, m))) for m in max_pad)
    channels = st.one_of(st.sampled_from([1, 6, 8, 9, 16]), st.integers(1, 16))
    options = dict(stride=tuple(draw(st.integers(1, 3)) for _ in range(rank)),
                   dilation=tuple(draw(st.integers(1, 3)) for _ in range(rank)), padding=padding, padding_mode=mode)
    x_shape = (draw(st.integers(0, 3)), *spatial, draw(channels))
    w_shape = (*kernel, x_shape[-1], draw(channels))
    try:
        conv_spec(x_shape, w_shape, **options)
    except ValueError:
        assume(False)  # the kernel does not fit, or the padding is too wide for reflect / circular
    return x_shape, w_shape, options


def check_close(got, expected, magnitude, terms, dtype):
    """|got - expected| <= (terms + 2) eps * magnitude, magnitude the same sum taken over |operands|."""
    assert got.dtype == dtype and got.shape == expected.shape
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(got - expected), (terms + 2) * eps * magnitude + np.finfo(dtype).tiny)


def activate(y, activation, slope):
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "leaky_relu":
        return np.where(y < 0, slope * y, y)
    return y


@pytest.mark.parametrize("kernel", DCONV_KERNELS, ids=lambda k: k.name)
@given(case=small_channel_cases(), use_bias=st.booleans(), activation=st.sampled_from([None, "relu", "leaky_relu"]),
       seed=st.integers(0, 2**32 - 1))
def test_direct_conv_matches_reference(kernel, case, use_bias, activation, seed):
    x_shape, w_shape, options = case
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype) if use_bias else None
    with convkit.use_kernel(kernel.name):
        y = ops.conv(x, w, b, activation=activation, negative_slope=0.2, **options)
        dy = rng.standard_normal(y.shape).astype(dtype)
        _, dw, db = ops.conv_backward(dy, x, w, need=("w", "b"), **options)

    terms = math.prod(w_shape[:-1]) + 1
    magnitude = conv_reference(abs(x), abs(w), None if b is None else abs(b), **options)
    check_close(y, activate(conv_reference(x, w, b, **options), activation, 0.2), magnitude, terms, dtype)
    pixels = max(1, math.prod(dy.shape[:-1]))
    _, expected_dw, expected_db = conv_backward_reference(dy, x, w, **options)
    _, magnitude_dw, magnitude_db = conv_backward_reference(abs(dy), abs(x), abs(w), **options)
    check_close(dw, expected_dw, magnitude_dw, pixels, dtype)
    check_close(db, expected_db, magnitude_db, pixels, dtype)


@pytest.mark.parametrize("kernel", DCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("stride", [1, 3])
def test_rows_longer_than_one_kernel_call(kernel, stride):
    # Backward weights hands a kernel at most 256 pixels of a row at a time; forward takes whole rows.
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(stride)
    x, w = rng.standard_normal((2, 900, 3)).astype(dtype), rng.standard_normal((5, 3, 7)).astype(dtype)
    options = dict(padding="same", stride=stride, padding_mode="reflect")
    with convkit.use_kernel(kernel.name):
        y = ops.conv(x, w, **options)
        dy = rng.standard_normal(y.shape).astype(dtype)
        _, dw, db = ops.conv_backward(dy, x, w, need=("w", "b"), **options)
    tolerance = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, conv_reference(x, w, **options), rtol=0, atol=tolerance)
    _, expected_dw, expected_db = conv_backward_reference(dy, x, w, **options)
    np.testing.assert_allclose(dw, expected_dw, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(db, expected_db, rtol=tolerance, atol=tolerance)


# LeNet-5's two convolutions (big enough that several threads share the work) and a 3-D one.
THREAD_CASES = [((64, 28, 28, 1), (5, 5, 1, 6), dict(padding="same")),
                ((64, 14, 14, 6), (5, 5, 6, 16), {}),
                ((4, 10, 12, 12, 3), (3, 3, 3, 3, 9), dict(padding=1, padding_mode="circular"))]


@pytest.mark.parametrize("kernel", DCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("x_shape, w_shape, options", THREAD_CASES, ids=["lenet-conv1", "lenet-conv2", "conv3d"])
def test_results_do_not_depend_on_thread_count(kernel, x_shape, w_shape, options):
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype)
    spec = conv_spec(x_shape, w_shape, **options)
    dy = rng.standard_normal((x_shape[0], *spec.out_spatial, w_shape[-1])).astype(dtype)
    results = []
    with convkit.use_kernel(kernel.name):
        for threads in (1, 2, 3):
            convkit.set_num_threads(threads)
            results.append((ops.conv(x, w, b, activation="relu", **options), *ops.conv_backward(dy, x, w, **options)))
    for result in results[1:]:
        for got, first in zip(result, results[0]):
            np.testing.assert_array_equal(got, first)


@pytest.mark.parametrize("options", [dict(padding="same", stride=2), dict(padding=1, dilation=2, padding_mode="reflect")])
def test_gradients_by_finite_differences(options):
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((2, 7, 8, 3)), rng.standard_normal((3, 3, 3, 6)), rng.standard_normal(6)
    check_by_finite_differences(lambda x, w, b: ops.conv(x, w, b, **options),
                                lambda dy: ops.conv_backward(dy, x, w, **options), (x, w, b), rng)


@pytest.mark.parametrize("kernel", [k for k in DCONV_KERNELS if k.isa != "ref"], ids=lambda k: k.name)
def test_single_channel_path_sums_like_the_channel_path(kernel):
    # One input channel at stride 1 is vectorised over pixels, a one-pixel run over channels: the same
    # terms in the same order, so the same bits. A 5-wide image gives a one-pixel run; a wider one puts
    # the same window first in a long run.
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((3, 6, 40, 1), (3, 5, 1, 7), (7,)))
    with convkit.use_kernel(kernel.name):
        alone = ops.conv(x[:, :, :5], w, b, activation="leaky_relu")
        in_a_run = ops.conv(x, w, b, activation="leaky_relu")
    assert alone.shape[2] == 1
    np.testing.assert_array_equal(alone[:, :, 0], in_a_run[:, :, 0])
