"""Tests of convkit.conv_spec and convkit.reference; they need no compiled extension."""

from __future__ import annotations

import importlib
import itertools
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st


def _load_pure_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """convkit.conv_spec and convkit.reference, through a stand-in package if convkit/__init__ cannot import.

    The stand-in is removed again, so that other tests still see the real package.
    """
    try:
        return importlib.import_module("convkit.conv_spec"), importlib.import_module("convkit.reference")
    except ImportError:
        stub = types.ModuleType("convkit")
        stub.__path__ = [str(Path(__file__).resolve().parents[1] / "convkit")]
        sys.modules["convkit"] = stub
        try:
            return importlib.import_module("convkit.conv_spec"), importlib.import_module("convkit.reference")
        finally:
            for name in [name for name in sys.modules if name == "convkit" or name.startswith("convkit.")]:
                del sys.modules[name]


cs, ref = _load_pure_modules()
MODES = cs.PADDING_MODES
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def conv1d(x, k, **options):
    """1-channel 1-D convolution of the lists x and k, as a flat array."""
    x = np.asarray(x, np.float64).reshape(1, -1, 1)
    return ref.conv_reference(x, np.asarray(k, np.float64).reshape(-1, 1, 1), **options).ravel()


# --- worked examples ---------------------------------------------------------------------------

COURSE_X = [40, 50, 70, 80, 90, 10, 20, 30, 40]


@pytest.mark.parametrize(
    "kernel, options, expected",
    [
        ([0.2, -0.3, 0.4], {}, [21, 21, 26, -7, 23, 8, 11]),
        ([0.2, -0.3, 0.4], {"stride": 2}, [21, 26, 23, 11]),
        ([0.2, -0.3, 0.4], {"stride": 3}, [21, -7, 11]),
        # 40*.1 + 50*.2 + 70*.3 + 80*.2 + 90*.1 = 60, ...
        ([0.1, 0.2, 0.3, 0.2, 0.1], {}, [60, 62, 54, 36, 27]),
        # x[i] + 2 x[i+1] - 2 x[i+5] - x[i+6]: 40 + 100 - 20 - 20 = 100, ...
        ([1, 2, 0, 0, 0, -2, -1], {}, [100, 120, 130]),
        # dilation 2 reads x[i], x[i+2], x[i+4]: 8 - 21 + 36 = 23, 10 - 24 + 4 = -10, ...
        ([0.2, -0.3, 0.4], {"dilation": 2}, [23, -10, -5, 25, 28]),
    ],
)
def test_course_1d(kernel, options, expected):
    np.testing.assert_allclose(conv1d(COURSE_X, kernel, **options), expected, atol=1e-12)


@pytest.mark.parametrize(
    "mode, expected",
    [("zeros", [0, 0, 1, 2, 3, 0]), ("reflect", [3, 2, 1, 2, 3, 2]), ("replicate", [1, 1, 1, 2, 3, 3]),
     ("circular", [2, 3, 1, 2, 3, 1])],
)
def test_pad_reference(mode, expected):
    padded = ref.pad_reference(np.array([1, 2, 3]).reshape(1, 3, 1), (2,), (1,), mode)
    np.testing.assert_array_equal(padded.ravel(), expected)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("zeros", [8, 14, 20, 26, 14]),  # [0, 10, ..., 50, 0]
        ("reflect", [10, 14, 20, 26, 26]),  # [20, 10, ..., 50, 40]
        ("replicate", [9, 14, 20, 26, 29]),  # [10, 10, ..., 50, 50]
        ("circular", [13, 14, 20, 26, 17]),  # [50, 10, ..., 50, 10]
    ],
)
def test_same_padding_modes_1d(mode, expected):
    result = conv1d([10, 20, 30, 40, 50], [0.1, 0.2, 0.3], padding="same", padding_mode=mode)
    np.testing.assert_allclose(result, expected, atol=1e-12)


def test_same_padding_even_kernel_and_stride():
    # Even kernel: the extra zero goes at the end, [10, ..., 50, 0].
    np.testing.assert_allclose(conv1d([10, 20, 30, 40, 50], [1, 2], padding="same"), [50, 80, 110, 140, 50])
    # Stride 2: out = ceil(5 / 2) = 3 over [0, 10, ..., 50, 0].
    np.testing.assert_allclose(conv1d([10, 20, 30, 40, 50], [0.1, 0.2, 0.3], padding="same", stride=2), [8, 20, 14])


@pytest.mark.parametrize(
    "in_size, kernel, stride, dilation, before, after",
    [(5, 3, 1, 1, 1, 1), (5, 2, 1, 1, 0, 1), (5, 3, 2, 1, 1, 1), (6, 3, 2, 1, 0, 1), (6, 1, 3, 1, 0, 0),
     (7, 3, 1, 2, 2, 2), (4, 4, 4, 1, 0, 0), (1, 3, 1, 1, 1, 1)],
)
def test_same_padding_amounts(in_size, kernel, stride, dilation, before, after):
    spec = cs.conv_spec((1, in_size, 1), (kernel, 1, 1), stride=stride, dilation=dilation, padding="same")
    assert (spec.pad_before, spec.pad_after) == ((before,), (after,))
    assert spec.out_spatial == (-(-in_size // stride),)


@pytest.mark.parametrize(
    "x, k, expected",
    [
        ([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]], [[19, 25], [37, 43]]),
        ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 2], [3, 4]], [[37, 47], [67, 77]]),
    ],
)
def test_course_2d(x, k, expected):
    result = ref.conv_reference(np.array(x).reshape(1, 3, 3, 1), np.array(k).reshape(2, 2, 1, 1))
    np.testing.assert_array_equal(result.reshape(2, 2), expected)


def test_padding_forms_and_integer_types():
    spec = cs.conv_spec((2, 5, 6, 3), (3, 2, 1, 6), padding=((1, 2), 0), stride=(np.int64(2), 1),
                        dilation=[1, np.int32(2)], groups=3)
    assert spec.pad_before == (1, 0) and spec.pad_after == (2, 0)
    assert spec.stride == (2, 1) and spec.dilation == (1, 2) and spec.groups == 3
    assert spec.out_spatial == ((5 + 3 - 3) // 2 + 1, 6 - 2)
    assert cs.conv_spec((0, 4, 2), (2, 2, 2), padding=1).out_spatial == (5,)


def test_conv_transpose_examples():
    # Each x[i] adds [1, 1, 1] * x[i] at 2 i, 2 i + 1, 2 i + 2.
    x = np.array([1.0, 2.0]).reshape(1, 2, 1)
    result = ref.conv_transpose_reference(x, np.ones((3, 1, 1)), stride=2)
    np.testing.assert_array_equal(result.ravel(), [1, 1, 3, 2, 2])
    result = ref.conv_transpose_reference(x, np.ones((3, 1, 1)), stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(result.ravel(), [1, 3, 2, 2])
    assert cs.conv_transpose_spec((1, 5, 1), (3, 1, 1), stride=2, padding="same").out_spatial == (10,)
    assert cs.conv_transpose_spec((1, 5, 1), (1, 1, 1), stride=4, padding="same").out_spatial == (20,)


def test_matmul_reference():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(ref.matmul_reference(a, b), a @ b)
    np.testing.assert_array_equal(ref.matmul_reference(a.T, b.T, transpose_a=True, transpose_b=True), a @ b)
    batch = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(ref.matmul_reference(a, batch), a @ batch)


# --- brute force ---------------------------------------------------------------------------------


def source_index(i: int, n: int, mode: str) -> int | None:
    """Input index that position i (relative to the first input sample) of an axis of size n reads."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i  # reflect, padding < n


def brute_force_conv(x, w, b, spec):
    """Scalar-loop convolution following the definition, for tiny sizes."""
    batch, *in_spatial, _ = x.shape
    *kernel_size, c_in_group, c_out = w.shape
    c_out_group = c_out // spec.groups
    y = np.zeros((batch, *spec.out_spatial, c_out))
    positions = itertools.product(*map(range, spec.out_spatial))
    for n, out, co in itertools.product(range(batch), positions, range(c_out)):
        group = co // c_out_group
        total = 0.0 if b is None else b[co]
        for offset in itertools.product(*map(range, kernel_size)):
            axes = zip(out, offset, spec.stride, spec.dilation, spec.pad_before, in_spatial)
            source = [source_index(o * s + k * d - lo, size, spec.padding_mode) for o, k, s, d, lo, size in axes]
            if None not in source:
                for ci in range(c_in_group):
                    total += x[(n, *source, group * c_in_group + ci)] * w[(*offset, ci, co)]
        y[(n, *out, co)] = total
    return y


def int_or_tuple(draw, values: list[int]):
    """values as an int when all equal and the draw says so, else as a tuple."""
    return values[0] if len(set(values)) == 1 and draw(st.booleans()) else tuple(values)


@st.composite
def conv_cases(draw, modes=MODES):
    """(x, w, b, options) for conv_reference: every padding form and mode, tiny sizes."""
    rank = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(modes))
    spatial = draw(st.lists(st.integers(1, 6 if rank < 3 else 4), min_size=rank, max_size=rank))
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    max_pad = [{"reflect": n - 1, "circular": n}.get(mode, 2) for n in spatial]
    pairs = [(draw(st.integers(0, m)), draw(st.integers(0, m))) for m in max_pad]
    form = draw(st.sampled_from(["valid", "same", "int", "axes", "pairs"]))
    if form in ("valid", "same"):
        padding = form
        pairs = [(0, 0) if form == "valid" else (m, m) for m in max_pad]  # "same" pads are checked below
    elif form == "int":
        padding = min(max_pad)
        pairs = [(padding, padding)] * rank
    elif form == "axes":
        padding = tuple(before for before, _ in pairs)
        pairs = [(before, before) for before in padding]
    else:
        padding = tuple(pairs)
    # Kernels that fit the padded input.
    kernel = [
        draw(st.integers(1, min(3, (n + before + after - 1) // d + 1)))
        for n, (before, after), d in zip(spatial, pairs, dilation)
    ]
    groups = draw(st.integers(1, 4))
    c_in, c_out = groups * draw(st.integers(1, 4 // groups)), groups * draw(st.integers(1, 4 // groups))
    options = dict(stride=int_or_tuple(draw, stride), padding=padding, dilation=int_or_tuple(draw, dilation),
                   groups=groups, padding_mode=mode)
    x_shape, w_shape = (draw(st.sampled_from([1, 2, 0])), *spatial, c_in), (*kernel, c_in // groups, c_out)
    try:
        cs.conv_spec(x_shape, w_shape, **options)
    except ValueError:
        assume(False)  # "same" padding too wide for reflect / circular on a tiny input
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = rng.standard_normal(c_out) if draw(st.booleans()) else None
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), b, options


@SETTINGS
@given(conv_cases())
def test_conv_reference_matches_brute_force(case):
    x, w, b, options = case
    spec = cs.conv_spec(x.shape, w.shape, **options)
    np.testing.assert_allclose(ref.conv_reference(x, w, b, **options), brute_force_conv(x, w, b, spec),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_backward_reference_matches_finite_differences(mode, data):
    x, w, _, options = data.draw(conv_cases(modes=[mode]))
    rng = np.random.default_rng(0)
    b = rng.standard_normal(w.shape[-1])
    dy = rng.standard_normal(ref.conv_reference(x, w, b, **options).shape)
    dx, dw, db = ref.conv_backward_reference(dy, x, w, **options)

    def loss(x, w, b):
        return np.vdot(ref.conv_reference(x, w, b, **options), dy)

    # The loss is bilinear in (x, w) plus linear in b, so central differences are exact up to rounding.
    h = 1e-3
    for argument, grad in enumerate((dx, dw, db)):
        direction = rng.standard_normal(grad.shape)
        plus = [x, w, b]
        minus = [x, w, b]
        plus[argument] = plus[argument] + h * direction
        minus[argument] = minus[argument] - h * direction
        numeric = (loss(*plus) - loss(*minus)) / (2 * h)
        np.testing.assert_allclose(np.vdot(grad, direction), numeric, rtol=1e-8, atol=1e-8)


@SETTINGS
@given(data=st.data())
def test_conv_transpose_is_adjoint_of_conv(data):
    draw = data.draw
    rank = draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 5 if rank < 3 else 3), min_size=rank, max_size=rank))
    kernel = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2),
                             st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * rank)))
    output_padding = 0 if padding == "same" else tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)
    )
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    batch = draw(st.sampled_from([1, 2, 0]))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    try:
        spec = cs.conv_transpose_spec((batch, *spatial, c_in), (*kernel, c_out // groups, c_in),
                                      output_padding=output_padding, **options)
    except ValueError:
        assume(False)  # padding crops the whole output
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = rng.standard_normal((batch, *spatial, c_in))
    w = rng.standard_normal((*kernel, c_out // groups, c_in))
    x = rng.standard_normal((batch, *spec.out_spatial, c_out))

    conv_x = ref.conv_reference(x, w, **options)
    # output_padding >= stride makes the convolution one output longer; the transpose ignores it.
    conv_x = conv_x[(slice(None), *map(slice, spatial), slice(None))]
    assert conv_x.shape == y.shape
    transpose_y = ref.conv_transpose_reference(y, w, output_padding=output_padding, **options)
    np.testing.assert_allclose(np.vdot(conv_x, y), np.vdot(x, transpose_y), rtol=1e-10, atol=1e-10)


# --- validation ----------------------------------------------------------------------------------

X2, W2 = (1, 5, 5, 4), (3, 3, 4, 4)  # rank-2 input and kernel, 4 channels

BAD_CONV_ARGUMENTS = [
    # (x_shape, w_shape, options, text the message must contain)
    (X2, W2, {"stride": 0}, "stride must be a positive int or a tuple of 2 positive ints, got 0"),
    (X2, W2, {"stride": -2}, "stride must be a positive int or a tuple of 2 positive ints, got -2"),
    (X2, W2, {"stride": (1, 0)}, "stride must be a positive int or a tuple of 2 positive ints, got (1, 0)"),
    (X2, W2, {"stride": (1, 1, 1)}, "stride must be a positive int or a tuple of 2 positive ints, got (1, 1, 1)"),
    (X2, W2, {"stride": 1.5}, "stride must be a positive int or a tuple of 2 positive ints, got 1.5"),
    (X2, W2, {"stride": np.float64(2.0)}, "stride must be a positive int or a tuple of 2 positive ints, got"),
    (X2, W2, {"stride": True}, "stride must be a positive int or a tuple of 2 positive ints, got True"),
    (X2, W2, {"stride": 2**63}, f"stride must be a positive int or a tuple of 2 positive ints, got {2**63}"),
    (X2, W2, {"dilation": (0, 1)}, "dilation must be a positive int or a tuple of 2 positive ints, got (0, 1)"),
    (X2, W2, {"padding": -1}, "padding must be 'valid', 'same', a non-negative int"),
    (X2, W2, {"padding": -1}, "got -1"),
    (X2, W2, {"padding": -8 * 10**18}, "got -8000000000000000000"),
    (X2, W2, {"padding": -8e18}, "got -8e+18"),
    (X2, W2, {"padding": 2**62}, f"padding={2**62} makes spatial axis 0 of size 5 larger than 2**63 - 1"),
    (X2, W2, {"padding": ()}, "got ()"),
    (X2, W2, {"padding": (1, 2, 3)}, "got (1, 2, 3)"),
    (X2, W2, {"padding": ((1, 2), (0,))}, "got ((1, 2), (0,))"),
    (X2, W2, {"padding": (1, 0.5)}, "got (1, 0.5)"),
    (X2, W2, {"padding": "full"}, "got 'full'"),
    (X2, W2, {"padding": 5, "padding_mode": "reflect"},
     "padding_mode='reflect' allows padding of at most 4 on spatial axis 0 of size 5, got (5, 5) from padding=5"),
    (X2, W2, {"padding": ((0, 0), (0, 6)), "padding_mode": "circular"},
     "at most 5 on spatial axis 1 of size 5, got (0, 6)"),
    (X2, W2, {"padding_mode": "mirror"},
     "padding_mode must be one of ('zeros', 'reflect', 'replicate', 'circular'), got 'mirror'"),
    (X2, W2, {"groups": 0}, "groups must be a positive int dividing C_in = 4 and C_out = 4, got 0"),
    (X2, W2, {"groups": -2}, "got -2"),
    (X2, (3, 3, 4, 6), {"groups": 4}, "groups must be a positive int dividing C_in = 4 and C_out = 6, got 4"),
    (X2, (3, 3, 2, 4), {"groups": 1}, "w of shape (3, 3, 2, 4) needs C_in // groups = 4 on axis -2"),
    (X2, (3, 4, 4), {}, "w must have shape (*kernel_size, C_in // groups, C_out) with 2 non-empty kernel axes "
     "to match x of shape (1, 5, 5, 4), got shape (3, 4, 4)"),
    ((1, 5, 5, 5, 5, 4), (3, 3, 3, 3, 4, 4), {}, "x must have shape (N, *spatial, C_in) with 1 to 3 non-empty "
     "spatial axes and C_in >= 1, got shape (1, 5, 5, 5, 5, 4)"),
    ((1, 0, 5, 4), W2, {}, "got shape (1, 0, 5, 4)"),
    (X2, (6, 3, 4, 4), {"padding": ((0, 0), (1, 1))},
     "kernel of size 6 with dilation 1 spans 6 samples, more than the 5 of the padded input on spatial axis 0"),
    (X2, W2, {"dilation": (1, 3)}, "kernel of size 3 with dilation 3 spans 7 samples, more than the 5"),
]


@pytest.mark.parametrize("x_shape, w_shape, options, message", BAD_CONV_ARGUMENTS)
def test_conv_spec_rejects(x_shape, w_shape, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cs.conv_spec(x_shape, w_shape, **options)


BAD_TRANSPOSE_ARGUMENTS = [
    ({"stride": 2, "output_padding": 2},
     "output_padding must be smaller than max(stride, dilation) = 2 on spatial axis 0, got 2"),
    ({"stride": (2, 1), "dilation": (1, 3), "output_padding": (1, 3)}, "= 3 on spatial axis 1, got 3"),
    ({"output_padding": -1},
     "output_padding must be a non-negative int or a tuple of 2 non-negative ints, got -1"),
    ({"stride": 2, "padding": "same", "output_padding": 1},
     "output_padding must be 0 with padding='same', got (1, 1)"),
    ({"padding": 4}, "padding=4 crops 8 samples from the 7 of the transposed convolution on spatial axis 0"),
    ({"stride": 2**62}, f"stride={2**62}, dilation=1 with kernel size 3 make spatial axis 0 of size 5 "
     "larger than 2**63 - 1"),
    ({"groups": 3}, "groups must be a positive int dividing C_in = 4, got 3"),
]


@pytest.mark.parametrize("options, message", BAD_TRANSPOSE_ARGUMENTS)
def test_conv_transpose_spec_rejects(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cs.conv_transpose_spec(X2, W2, **options)


def test_conv_transpose_spec_rejects_weight_mismatch():
    with pytest.raises(ValueError, match=re.escape("w of shape (3, 3, 4, 2) needs C_in = 4 on its last axis")):
        cs.conv_transpose_spec(X2, (3, 3, 4, 2))


def test_reference_rejects_bad_bias_and_dy():
    x, w = np.zeros((1, 4, 2)), np.zeros((3, 2, 3))
    with pytest.raises(ValueError, match=re.escape("b must have shape (3,), got shape (2,)")):
        ref.conv_reference(x, w, np.zeros(2))
    with pytest.raises(ValueError, match=re.escape("dy must have shape (1, 2, 3), got shape (1, 3, 3)")):
        ref.conv_backward_reference(np.zeros((1, 3, 3)), x, w)
