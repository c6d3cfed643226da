"""Depthwise convolution (groups == C_in, channel multiplier m = C_out / C_in): the direct dwconv kernels,
forward and backward, against the independent float64 references in convkit.reference."""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.conv_spec import PADDING_MODES, conv_spec
from convkit.reference import conv_backward_reference, conv_reference, conv_transpose_reference

from conftest import available_kernels

DWCONV_KERNELS = available_kernels("dwconv")
DTYPES = {"f32": np.float32, "f64": np.float64}


def per_axis(draw, values):
    """An int when the axes agree and the draw says so, else one value per axis."""
    return values[0] if len(set(values)) == 1 and draw(st.booleans()) else tuple(values)


@st.composite
def depthwise_cases(draw):
    """(x shape, w shape, options): every padding form and mode, C not a multiple of the vector width."""
    rank = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(PADDING_MODES))
    spatial = [draw(st.integers(1, 9 if rank < 3 else 5)) for _ in range(rank)]
    kernel = [draw(st.integers(1, 5)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 3)) for _ in range(rank)]
    max_pad = [{"reflect": n - 1, "circular": n}.get(mode, 3) for n in spatial]
    form = draw(st.sampled_from(["valid", "same", "int", "axes", "pairs"]))
    if form in ("valid", "same"):
        padding = form
    elif form == "int":
        padding = draw(st.integers(0, min(max_pad)))
    elif form == "axes":
        padding = tuple(draw(st.integers(0, m)) for m in max_pad)
    else:
        padding = tuple((draw(st.integers(0, m)), draw(st.integers(0, m))) for m in max_pad)
    channels, multiplier = draw(st.integers(1, 20)), draw(st.integers(1, 3))
    options = dict(stride=per_axis(draw, stride), padding=padding, dilation=per_axis(draw, dilation),
                   groups=channels, padding_mode=mode)
    x_shape = (draw(st.integers(0, 3)), *spatial, channels)
    w_shape = (*kernel, 1, channels * multiplier)
    try:
        conv_spec(x_shape, w_shape, **options)
    except ValueError:
        assume(False)  # the kernel does not fit, or the padding is too wide for reflect / circular
    return x_shape, w_shape, options


def summands(w_shape, options, x_shape):
    """An upper bound on the terms of any one sum: taps * m for y, times the padded copies for dx, and
    every output pixel for dw and db."""
    spec = conv_spec(x_shape, w_shape, **options)
    taps = math.prod(spec.kernel_size) * (spec.out_channels // spec.in_channels)
    copies = math.prod(before + after + 1 for before, after in zip(spec.pad_before, spec.pad_after))
    pixels = x_shape[0] * math.prod(spec.out_spatial)
    return taps, taps * copies, pixels


def check_close(got, expected, magnitude, terms, dtype):
    """|got - expected| <= (terms + 2) eps * magnitude, magnitude the same sum taken over |operands|."""
    assert got.dtype == dtype and got.shape == expected.shape
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(got - expected), (terms + 2) * eps * magnitude + np.finfo(dtype).tiny)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@given(case=depthwise_cases(), use_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_depthwise_matches_reference(kernel, case, use_bias, seed):
    x_shape, w_shape, options = case
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[-1]).astype(dtype) if use_bias else None
    with convkit.use_kernel(kernel.name):
        y = ops.conv(x, w, b, **options)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, db = ops.conv_backward(dy, x, w, **options)

    y_terms, dx_terms, pixels = summands(w_shape, options, x_shape)
    check_close(y, conv_reference(x, w, b, **options),
                conv_reference(abs(x), abs(w), None if b is None else abs(b), **options), y_terms + 1, dtype)
    expected = conv_backward_reference(dy, x, w, **options)
    magnitude = conv_backward_reference(abs(dy), abs(x), abs(w), **options)
    for got, want, size, terms in zip((dx, dw, db), expected, magnitude, (dx_terms, pixels, pixels)):
        check_close(got, want, size, terms, dtype)


def check_against_references(kernel, x_shape, w_shape, options, seed):
    """y, dx, dw, db under `kernel` against the references, for shapes too big for the hypothesis test."""
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    options = dict(options, groups=x_shape[-1])
    with convkit.use_kernel(kernel.name):
        y = ops.conv(x, w, **options)
        dy = rng.standard_normal(y.shape).astype(dtype)
        gradients = ops.conv_backward(dy, x, w, **options)
    tolerance = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, conv_reference(x, w, **options), rtol=0, atol=tolerance)
    for got, expected in zip(gradients, conv_backward_reference(dy, x, w, **options)):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("stride", [1, 2])
def test_rows_longer_than_one_kernel_call(kernel, stride):
    # Backward weights hands a kernel at most 256 pixels of a row at a time.
    check_against_references(kernel, (2, 700, 10), (5, 1, 20), dict(padding="same", stride=stride,
                                                                    padding_mode="reflect"), seed=6)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("stride", [1, 2])
def test_weight_gradient_columns_across_row_blocks(kernel, stride):
    # Backward weights sums the short W runs (here every one: W = 3) down the rows of a height run; with
    # W = 3 a block of rows holds 682 of them, so the second image's run is cut at a block boundary.
    check_against_references(kernel, (2, 400, 3, 8), (3, 3, 1, 8), dict(padding=1, stride=stride,
                                                                     padding_mode="replicate"), seed=10)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("kernel_size,stride", [((7, 7), 1), ((1, 7), 1), ((5, 7), 2), ((3, 9), 2)])
def test_wide_kernels(kernel, kernel_size, stride):
    # 7 columns take the 7-wide sliding paths; 9 columns at stride 2 leave 4 or 5 per input in backward data.
    check_against_references(kernel, (2, 12, 27, 11), (*kernel_size, 1, 11),
                             dict(padding="same", stride=stride, padding_mode="replicate"), seed=7)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_fused_bias_and_activation(kernel, activation):
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in [(2, 7, 9, 19), (3, 3, 1, 38), (38,)])
    expected = conv_reference(x, w, b, padding="same", groups=19)
    if activation == "relu":
        expected = np.maximum(expected, 0)
    else:
        expected = np.where(expected < 0, 0.3 * expected, expected)
    with convkit.use_kernel(kernel.name):
        y = ops.conv2d(x, w, b, padding="same", groups=19, activation=activation, negative_slope=0.3)
    np.testing.assert_allclose(y, expected, rtol=0, atol=2000 * np.finfo(dtype).eps)


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_a_pixel_does_not_depend_on_the_kernel_path(kernel, kernel_size):
    # Columns 1-7 of a 9-wide image and of a 40-wide one read the same inputs, but the wide image's long
    # interior run takes the sliding tiles and the narrow one's short run the register-taps (3x3) or
    # small tiles (5x5): every path must do the same operations in the same order, the bias last.
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(9)
    wide = rng.standard_normal((2, 6, 40, 19)).astype(dtype)
    w, b = rng.standard_normal((kernel_size, kernel_size, 1, 19)).astype(dtype), rng.standard_normal(19).astype(dtype)
    options = dict(padding=kernel_size // 2, groups=19)
    with convkit.use_kernel(kernel.name):
        y_wide, y_narrow = (ops.conv2d(x, w, b, activation="leaky_relu", negative_slope=0.1, **options)
                            for x in (wide, wide[:, :, :9]))
    same = 9 - kernel_size // 2  # columns whose taps all lie inside the narrow image too
    np.testing.assert_array_equal(y_narrow[:, :, :same], y_wide[:, :, :same])
    expected = conv_reference(wide, w, b, **options)
    np.testing.assert_allclose(y_wide, np.where(expected < 0, 0.1 * expected, expected), rtol=0,
                               atol=500 * np.finfo(dtype).eps)


THREAD_CASES = [
    ((3, 17, 23, 24), (3, 3, 1, 24), dict(padding=1)),
    ((2, 15, 21, 13), (3, 5, 1, 26), dict(padding="same", padding_mode="reflect", stride=(1, 2))),
    ((4, 9, 11, 9), (2, 3, 1, 27), dict(padding=((1, 2), (2, 0)), padding_mode="circular", dilation=2, stride=3)),
    ((64, 40, 40), (5, 1, 40), dict(padding=2, padding_mode="replicate")),  # two blocks of rows in backward weights
    ((2, 9, 10, 150), (3, 3, 1, 150), dict(padding=1)),  # two or three blocks of channels in backward weights
    ((2, 400, 3, 8), (3, 3, 1, 8), dict(padding=1)),  # columns of edge pixels cut by a block of rows
]


@pytest.mark.parametrize("kernel", DWCONV_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("x_shape,w_shape,options", THREAD_CASES)
def test_results_do_not_depend_on_thread_count(kernel, x_shape, w_shape, options):
    dtype = DTYPES[kernel.dtype]
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[-1:]))
    options = dict(options, groups=x_shape[-1])
    dy = rng.standard_normal(ops.conv(x, w, **options).shape).astype(dtype)
    results = []
    with convkit.use_kernel(kernel.name):
        for threads in (1, 2, 3):
            convkit.set_num_threads(threads)
            results.append((ops.conv(x, w, b, **options), *ops.conv_backward(dy, x, w, **options)))
    for other in results[1:]:
        for got, first in zip(other, results[0]):
            np.testing.assert_array_equal(got, first)


def test_weight_gradient_error_does_not_grow_with_the_pixel_count():
    # Sums over 8 * 128 * 128 pixels of 0.1: one float32 running sum would be off by about 1%.
    n, size, channels = 8, 128, 8
    x = np.full((n, size, size, channels), 0.1, np.float32)
    dy = np.ones_like(x)
    _, dw, db = ops.conv_backward(dy, x, np.ones((3, 3, 1, channels), np.float32), padding=1, groups=channels)
    rows = np.array([size - 1, size, size - 1])  # pixels whose tap 0 / 1 / 2 reads inside x, per axis
    expected = n * np.outer(rows, rows) * np.float64(np.float32(0.1))
    np.testing.assert_allclose(dw[:, :, 0, :], np.repeat(expected[..., None], channels, -1), rtol=1e-5)
    np.testing.assert_array_equal(db, n * size * size)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize(
    "x_shape,w_shape,options",
    [
        ((2, 11, 3), (3, 1, 6), dict(padding="same", stride=2)),
        ((1, 6, 7, 4), (3, 2, 1, 4), dict(padding=((2, 1), (1, 1)), dilation=(1, 2))),
        ((2, 4, 5, 6, 2), (2, 3, 3, 1, 6), dict(padding=1, stride=(1, 2, 1))),
    ],
)
def test_gradients_match_finite_differences(mode, x_shape, w_shape, options):
    rng = np.random.default_rng(3)
    options = dict(options, groups=x_shape[-1], padding_mode=mode)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[-1])
    dy = rng.standard_normal(ops.conv(x, w, **options).shape)
    gradients = ops.conv_backward(dy, x, w, **options)

    def loss(x, w, b):
        return np.vdot(ops.conv(x, w, b, **options), dy)

    # The loss is bilinear in (x, w) plus linear in b: central differences are exact up to rounding.
    h = 1e-3
    for argument, grad in enumerate(gradients):
        for _ in range(3):
            direction = rng.standard_normal(grad.shape)
            plus, minus = [x, w, b], [x, w, b]
            plus[argument] = plus[argument] + h * direction
            minus[argument] = minus[argument] - h * direction
            numeric = (loss(*plus) - loss(*minus)) / (2 * h)
            np.testing.assert_allclose(np.vdot(grad, direction), numeric, rtol=1e-9, atol=1e-9)


def test_depthwise_runs_the_dwconv_reference_kernel():
    # The reference kernel sums bias + x*w tap by tap in float32, so it can be replayed exactly; the
    # im2col + GEMM path adds the bias last and would not match bit for bit.
    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(2, 6, 7, 5), (3, 3, 1, 5), (5,)])
    ref_kernel = next(k.name for k in DWCONV_KERNELS if k.dtype == "f32" and k.isa == "ref")
    with convkit.use_kernel(ref_kernel):
        y = ops.conv2d(x, w, b, padding=1, groups=5)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    expected = np.broadcast_to(b, y.shape).copy()
    for i, j in np.ndindex(3, 3):
        expected += padded[:, i:i + 6, j:j + 7] * w[i, j, 0]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("multiplier,stride,padding", [(1, 2, 1), (2, 1, "same"), (3, 3, 0)])
def test_transposed_depthwise_convolution(multiplier, stride, padding):
    # conv_transpose with groups == C_out is the adjoint of a depthwise convolution: the same kernels run.
    rng = np.random.default_rng(8)
    channels = 5
    x = rng.standard_normal((2, 6, 7, channels * multiplier))
    w = rng.standard_normal((3, 3, 1, channels * multiplier))
    options = dict(stride=stride, padding=padding, groups=channels)
    y = ops.conv_transpose(x, w, **options)
    np.testing.assert_allclose(y, conv_transpose_reference(x, w, **options), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = ops.conv_transpose_backward(dy, x, w, **options)
    np.testing.assert_allclose(dx, conv_reference(dy, w, stride=stride, padding=padding, groups=channels), atol=1e-12)
    _, expected_dw, _ = conv_backward_reference(x, dy, w, stride=stride, padding=padding, groups=channels)
    np.testing.assert_allclose(dw, expected_dw, atol=1e-11)


def test_one_channel_with_one_group_is_a_plain_convolution():
    x, w = np.random.default_rng(5).standard_normal((2, 8, 8, 1)), np.ones((3, 3, 1, 2))
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1, groups=1), conv_reference(x, w, padding=1), atol=1e-12)


def test_empty_batch():
    x, w = np.zeros((0, 5, 5, 4), np.float32), np.ones((3, 3, 1, 8), np.float32)
    y = ops.conv2d(x, w, padding=1, groups=4)
    assert y.shape == (0, 5, 5, 8)
    dx, dw, db = ops.conv_backward(y, x, w, padding=1, groups=4)
    assert dx.shape == x.shape and not dw.any() and not db.any()


def test_depthwise_benchmark_quick_json():
    """The benchmark script checks each layer against PyTorch, then times every pass against the copy roof."""
    pytest.importorskip("torch")
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_depthwise.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--json", "--repeats", "1", "--layers",
                           "mb-8x128-s2,suite-56x128"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [row["layer"] for row in report["rows"]] == ["mb-8x128-s2", "suite-56x128"]
    timed = [f"{p} {q}" for p in ("fwd", "bwd-x", "bwd-w", "f+b") for q in ("ms", "% roof")]
    assert all(row[key] > 0 for row in report["rows"] for key in ["copy GB/s", *timed, "fwd ratio", "f+b ratio"])
