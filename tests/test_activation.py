"""Activation ops: against the float64 references within a few ulps, every backward by finite differences
in float64, in-place and non-contiguous equivalence, special values (NaN, inf, kinks, ties), thread-count
independence and argument checks."""
import numpy as np
import pytest
from conftest import available_kernels
from conv_testing import check_by_finite_differences
from hypothesis import assume, given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.reference import maxout_reference, pointwise_activation_reference, prelu_reference, softmax_reference

DTYPES = [np.float32, np.float64]

# (public name, reference name, params, where the function has kinks, what its backward takes)
POINTWISE = [
    ("relu", "relu", {}, (0.0,)),
    ("relu6", "relu6", {}, (0.0, 6.0)),
    ("leaky_relu", "leaky_relu", {}, (0.0,)),
    ("leaky_relu", "leaky_relu", {"alpha": 0.3}, (0.0,)),
    ("elu", "elu", {}, (0.0,)),
    ("elu", "elu", {"alpha": 0.5}, (0.0,)),
    ("sigmoid", "sigmoid", {}, ()),
    ("tanh", "tanh", {}, ()),
    ("gelu", "gelu", {}, ()),
    ("gelu", "gelu_tanh", {"approximate": "tanh"}, ()),
    ("hard_sigmoid", "hard_sigmoid", {}, (-3.0, 3.0)),
    ("hard_swish", "hard_swish", {}, (-3.0, 3.0)),
    ("linear", "linear", {}, ()),
]
POINTWISE_IDS = [f"{name}-{ref}-{params}" for name, ref, params, _ in POINTWISE]


def ulp_error(actual: np.ndarray, expected64: np.ndarray) -> np.ndarray:
    """|actual - expected| in units of the spacing of actual's dtype at the expected value rounded to it."""
    rounded = expected64.astype(actual.dtype)
    spacing = np.spacing(np.abs(rounded)).astype(np.float64)
    same = (actual == rounded) | (np.isnan(actual) & np.isnan(rounded))
    return np.where(same, 0.0, np.abs(actual.astype(np.float64) - expected64) / spacing)


def assert_within_ulps(actual, expected64, ulps, atol=0.0):
    """actual is within `ulps` of its dtype's ulps of expected64, or atol of it (for sums that cancel)."""
    err = ulp_error(actual, expected64)
    ok = (err <= ulps) | (np.abs(actual.astype(np.float64) - expected64) <= atol)
    assert ok.all(), (f"{np.count_nonzero(~ok)} values off, worst {err[~ok].max()} ulps: "
                      f"got {actual[~ok][:5]}, expected {expected64[~ok][:5]}")


def reference(x, ref: str, params: dict):
    """(f(x), f'(x)) from the float64 reference; `approximate` is already in the reference's name."""
    return pointwise_activation_reference(x, ref, **{k: v for k, v in params.items() if k != "approximate"})


def away_from_kinks(x: np.ndarray, kinks, margin=1e-3) -> np.ndarray:
    for kink in kinks:
        x = np.where(np.abs(x - kink) < margin, kink + 10 * margin, x)
    return x


@st.composite
def arrays(draw, max_rank=4):
    shape = tuple(draw(st.lists(st.integers(0, 6), max_size=max_rank)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.01, 1.0, 4.0, 30.0]))
    return np.asarray(rng.standard_normal(shape) * scale), rng


# ---- elementwise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,ref,params,kinks", POINTWISE, ids=POINTWISE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=arrays())
def test_pointwise_forward_and_backward_match_reference(name, ref, params, kinks, dtype, data):
    x64, rng = data
    x = x64.astype(dtype)
    y = ops.activation(x, name, **params)
    expected, slope = reference(x, ref, params)
    assert y.dtype == dtype and y.shape == x.shape
    # Computed in double and rounded once: float32 is within an ulp of the rounded exact value. float64
    # carries the C library's few ulps, and the rounding of intermediate arguments (gelu's u, x / sqrt 2)
    # magnified by the condition number |x f'(x) / f(x)| (up to ~700 where exp(-2u) nears underflow).
    with np.errstate(divide="ignore", invalid="ignore"):
        condition = np.nan_to_num(np.abs(x * slope / expected), nan=0.0, posinf=0.0)
    assert_within_ulps(y, expected, 1 if dtype == np.float32 else 8 + 4 * condition)

    dy = rng.standard_normal(x.shape).astype(dtype)
    takes = ops.ACTIVATION_BACKWARD_INPUT[name]
    dx = ops.activation_backward(dy, y if takes == "y" else x, name, **params)
    assert dx.dtype == dtype and dx.shape == x.shape
    expected_dx = dy.astype(np.float64) * slope
    if takes == "x":
        # The slope is a sum of terms of size up to 1 + |x| (gelu: Phi(x) + x phi(x)) that cancel near its
        # zeros: double arithmetic leaves an absolute error of a few double eps times that size.
        atol = 8 * np.finfo(np.float64).eps * np.abs(dy.astype(np.float64)) * (1 + np.abs(x.astype(np.float64)))
        assert_within_ulps(dx, expected_dx, 1 if dtype == np.float32 else 8, atol=atol)
    else:
        # From y, which is rounded to dtype: the slope is off by at most (max |d slope / dy|) * ulp(y), i.e.
        # 2 eps |dy| for tanh, eps |dy| for sigmoid, eps alpha |dy| for elu.
        eps = np.finfo(dtype).eps
        assert_within_ulps(dx, expected_dx, 2, atol=4 * eps * np.abs(dy.astype(np.float64)))


@pytest.mark.parametrize("name,ref,params,kinks", POINTWISE, ids=POINTWISE_IDS)
def test_pointwise_backward_by_finite_differences(name, ref, params, kinks):
    rng = np.random.default_rng(7)
    x = away_from_kinks(rng.standard_normal((3, 4, 5)) * 3, kinks)
    takes = ops.ACTIVATION_BACKWARD_INPUT[name]

    def backward(dy):
        saved = ops.activation(x, name, **params) if takes == "y" else x
        return [ops.activation_backward(dy, saved, name, **params)]

    check_by_finite_differences(lambda x: ops.activation(x, name, **params), backward, [x], rng, samples=30)


def test_named_functions_are_the_generic_ones():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    pairs = [(ops.relu(x), ops.relu_backward(dy, ops.relu(x)), "relu", {}),
             (ops.leaky_relu(x, 0.2), ops.leaky_relu_backward(dy, ops.leaky_relu(x, 0.2), 0.2), "leaky_relu",
              {"alpha": 0.2}),
             (ops.elu(x, 0.7), ops.elu_backward(dy, ops.elu(x, 0.7), 0.7), "elu", {"alpha": 0.7}),
             (ops.sigmoid(x), ops.sigmoid_backward(dy, ops.sigmoid(x)), "sigmoid", {}),
             (ops.tanh(x), ops.tanh_backward(dy, ops.tanh(x)), "tanh", {}),
             (ops.gelu(x, "tanh"), ops.gelu_backward(dy, x, "tanh"), "gelu", {"approximate": "tanh"}),
             (ops.hard_sigmoid(x), ops.hard_sigmoid_backward(dy, x), "hard_sigmoid", {}),
             (ops.hard_swish(x), ops.hard_swish_backward(dy, x), "hard_swish", {}),
             (ops.softmax(x, 0), ops.softmax_backward(dy, ops.softmax(x, 0), 0), "softmax", {"axis": 0}),
             (ops.log_softmax(x), ops.log_softmax_backward(dy, ops.log_softmax(x)), "log_softmax", {})]
    for y, dx, name, params in pairs:
        np.testing.assert_array_equal(ops.activation(x, name, **params), y)
        saved = x if ops.ACTIVATION_BACKWARD_INPUT[name] == "x" else y
        np.testing.assert_array_equal(ops.activation_backward(dy, saved, name, **params), dx)
    assert set(ops.ACTIVATIONS) == set(ops.ACTIVATION_BACKWARD_INPUT)
    assert "prelu" not in ops.ACTIVATIONS


@pytest.mark.parametrize("dtype", DTYPES)
def test_clipped_relu_and_relu6_match_reference_with_zero_slope_at_both_kinks(dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(50) * 5, [0.0, 2.5, 6.0, -0.0, np.inf, -np.inf]]).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    for y, dx, max_value in [(ops.relu6(x), ops.relu6_backward(dy, ops.relu6(x)), 6.0),
                             (ops.clipped_relu(x, 2.5), ops.clipped_relu_backward(dy, ops.clipped_relu(x, 2.5), 2.5),
                              2.5)]:
        expected, slope = pointwise_activation_reference(x, "clipped_relu", max_value=max_value)
        np.testing.assert_array_equal(y, expected.astype(dtype))
        np.testing.assert_array_equal(dx, (dy * slope).astype(dtype))
    np.testing.assert_array_equal(ops.activation(x, "relu6"), ops.relu6(x))
    assert np.isnan(ops.relu6(np.array([np.nan], dtype)))[0]
    with pytest.raises(ValueError, match="max_value must be > 0, got 0"):
        ops.clipped_relu(x, 0)


def test_kinks_take_the_left_slope_and_hard_functions_follow_mobilenet_v3():
    x = np.array([-3.0, 0.0, 3.0])
    dy = np.ones(3)
    np.testing.assert_array_equal(ops.relu_backward(dy, ops.relu(x)), [0, 0, 1])
    np.testing.assert_array_equal(ops.leaky_relu_backward(dy, ops.leaky_relu(x, 0.1), 0.1), [0.1, 0.1, 1])
    np.testing.assert_array_equal(ops.elu_backward(dy, ops.elu(x, 0.5), 0.5)[1:], [0.5, 1])
    np.testing.assert_array_equal(ops.hard_sigmoid(x), [0, 0.5, 1])
    np.testing.assert_array_equal(ops.hard_sigmoid_backward(dy, x), [0, 1 / 6, 0])
    np.testing.assert_array_equal(ops.hard_swish(np.array([-4.0, -3.0, 1.5, 3.0, 4.0])), [0, 0, 1.125, 3, 4])
    np.testing.assert_array_equal(ops.hard_swish_backward(np.ones(5), np.array([-4.0, -3.0, 0.0, 3.0, 4.0])),
                                  [0, -0.5, 0.5, 1.5, 1])


@pytest.mark.parametrize("name,ref,params,kinks", POINTWISE, ids=POINTWISE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_special_values(name, ref, params, kinks, dtype):
    x = np.array([np.nan, -np.inf, np.inf, -1e30, 1e30, -0.0, 0.0], dtype=dtype)
    y = ops.activation(x, name, **params)
    assert np.isnan(y[0]), "NaN propagates"
    expected, _ = reference(x[1:], ref, params)
    limits = {"gelu": [0, np.inf], "gelu_tanh": [0, np.inf], "hard_swish": [0, np.inf]}
    if ref in limits:  # x * (something -> 0) at -inf: the limit, not NaN
        expected[:2] = limits[ref]
    np.testing.assert_array_equal(y[1:], expected.astype(dtype))
    dx = ops.activation_backward(np.ones_like(x), y if ops.ACTIVATION_BACKWARD_INPUT[name] == "y" else x, name,
                                 **params)
    assert np.isnan(dx[0]) or name == "linear", "a NaN input gives a NaN gradient"
    assert not np.isnan(dx[1:]).any(), f"no NaN gradients at infinities: {dx}"


# ---- in place, out=, layouts ---------------------------------------------------------------------------------

NAMED = [(name, params) for name, _, params, _ in POINTWISE] + [("softmax", {"axis": 0}), ("softmax", {}),
                                                                 ("log_softmax", {"axis": 1})]


@pytest.mark.parametrize("name,params", NAMED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_and_out_give_the_same_bits(name, params, dtype):
    x = (np.random.default_rng(1).standard_normal((5, 6, 7)) * 3).astype(dtype)
    y = ops.activation(x, name, **params)
    inplace = x.copy()
    assert ops.activation(inplace, name, out=inplace, **params) is inplace
    np.testing.assert_array_equal(inplace, y)
    out = np.full_like(x, np.nan)
    assert ops.activation(x, name, out=out, **params) is out
    np.testing.assert_array_equal(out, y)
    # An out= that is a strided view, and one that overlaps x without being x.
    canvas = np.zeros((5, 6, 14), dtype)
    ops.activation(x, name, out=canvas[:, :, ::2], **params)
    np.testing.assert_array_equal(canvas[:, :, ::2], y)
    buffer = np.concatenate([x.ravel(), np.zeros(1, dtype)])
    shifted = buffer[1:].reshape(x.shape)
    ops.activation(buffer[:-1].reshape(x.shape), name, out=shifted, **params)
    np.testing.assert_array_equal(shifted, y)


@pytest.mark.parametrize("name,params", NAMED)
def test_non_contiguous_inputs(name, params):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 8, 10))
    for view in (base[:, ::2, 1::3], base.transpose(2, 0, 1), base[::-1, :, ::-2], base.astype(">f8")):
        y = ops.activation(view, name, **params)
        np.testing.assert_array_equal(y, ops.activation(np.ascontiguousarray(view, np.float64), name, **params))
        dy = rng.standard_normal(view.shape)[::1]
        saved = y if ops.ACTIVATION_BACKWARD_INPUT[name] == "y" else view
        np.testing.assert_array_equal(ops.activation_backward(dy.T.copy().T, saved, name, **params),
                                      ops.activation_backward(dy, np.ascontiguousarray(saved), name, **params))


def test_mixed_dtypes_compute_in_float64():
    x32 = np.linspace(-2, 2, 10, dtype=np.float32)
    dy64 = np.ones(10)
    dx = ops.sigmoid_backward(dy64, ops.sigmoid(x32))
    assert dx.dtype == np.float64
    dx, dslope = ops.prelu_backward(dy64, x32, np.float32(0.2))
    assert dx.dtype == dslope.dtype == np.float64 and dslope.shape == ()


def test_thread_count_does_not_change_any_bit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 33, 65)).astype(np.float32) * 4  # well above the per-thread minimum
    dy = rng.standard_normal(x.shape).astype(np.float32)
    slope = rng.uniform(0, 0.5, 65).astype(np.float32)

    def everything():
        results = []
        for name, params in NAMED:
            y = ops.activation(x, name, **params)
            saved = y if ops.ACTIVATION_BACKWARD_INPUT[name] == "y" else x
            results += [y, ops.activation_backward(dy, saved, name, **params)]
        results += [*ops.prelu_backward(dy, x, slope), *ops.prelu_backward(dy, x, slope[:1]), ops.prelu(x, slope)]
        results += [ops.maxout(x[..., :64], 4), ops.maxout_backward(dy[..., :16], x[..., :64], 4)]
        return results

    convkit.set_num_threads(1)
    single = everything()
    convkit.set_num_threads(2)
    for a, b in zip(single, everything()):
        np.testing.assert_array_equal(a, b)


# ---- softmax -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=arrays(), axis_seed=st.integers(0, 100))
def test_softmax_matches_reference(log, dtype, data, axis_seed):
    x64, rng = data
    if x64.ndim == 0:
        x64 = x64.reshape(1)
    axis = axis_seed % (2 * x64.ndim) - x64.ndim
    x = x64.astype(dtype)
    f, backward = (ops.log_softmax, ops.log_softmax_backward) if log else (ops.softmax, ops.softmax_backward)
    y = f(x, axis)
    expected = softmax_reference(x, axis, log)
    length = x.shape[axis]
    eps64 = np.finfo(np.float64).eps
    if log:  # x - m - log(s): the float64 sum s costs up to `length` ulps, absolute in log(s)
        z = np.abs(x.astype(np.float64) - x.max(axis=axis, keepdims=True, initial=-np.inf))
        assert_within_ulps(y, expected, 2, atol=(length + 4) * eps64 * (1 + z))
    else:  # float32: exp rounded to float32, then scaled: two roundings; float64: the sum's error
        assert_within_ulps(y, expected, 2 if dtype == np.float32 else length + 8)

    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = backward(dy, y, axis)
    yy = expected  # the gradient formula in float64 at the exact output
    sums = (dy * (np.ones_like(yy) if log else yy)).sum(axis=axis, keepdims=True)
    expected_dx = dy - np.exp(yy) * sums if log else yy * (dy - sums)
    scale = np.abs(dy).sum(axis=axis, keepdims=True, initial=0) + np.abs(dy)
    atol = (length + 4) * np.finfo(dtype).eps * scale
    assert_within_ulps(dx, expected_dx, 4, atol=atol)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_backward_by_finite_differences(log, axis):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)) * 2
    f, backward = (ops.log_softmax, ops.log_softmax_backward) if log else (ops.softmax, ops.softmax_backward)
    check_by_finite_differences(lambda x: f(x, axis), lambda dy: [backward(dy, f(x, axis), axis)], [x], rng,
                                samples=30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_and_sums_in_float64(dtype):
    x = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, -1002.0]], dtype)
    np.testing.assert_allclose(ops.softmax(x), softmax_reference(x), rtol=1e-6)
    # 2**20 equal float32 entries: a float32 running sum would stall at 2**24 / ... ; the float64 one is exact.
    many = np.zeros(1 << 20, dtype)
    np.testing.assert_array_equal(ops.softmax(many), np.full(many.shape, 2.0 ** -20, dtype))
    np.testing.assert_array_equal(ops.log_softmax(many), np.full(many.shape, -20 * np.log(2), dtype))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_special_values(log):
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 3.0, np.inf], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0],
                  [np.inf, np.nan, 0.0]])
    f = ops.log_softmax if log else ops.softmax
    y = f(x)
    assert np.isnan(y[0]).all() and np.isnan(y[2]).all() and np.isnan(y[4]).all()
    np.testing.assert_array_equal(y[1], np.log([0.5, 0, 0.5]) if log else [0.5, 0, 0.5])
    np.testing.assert_allclose(y[3], softmax_reference(x[3], log=log), rtol=1e-15)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(softmax_reference(x, log=log)))
    backward = ops.log_softmax_backward if log else ops.softmax_backward
    dx = backward(np.ones_like(x), y)
    assert np.isfinite(dx[1]).all() and np.isfinite(dx[3]).all() and np.isnan(dx[0]).all()


# ---- PReLU ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=arrays(), shared=st.sampled_from([None, (), (1,)]))
def test_prelu_matches_reference(dtype, data, shared):
    x64, rng = data
    assume(x64.ndim and x64.shape[-1])  # (empty arrays: test_empty_arrays)
    channels = x64.shape[-1]
    slope = rng.uniform(-0.5, 1.5, channels if shared is None else shared).astype(dtype)
    x = x64.astype(dtype)
    y = ops.prelu(x, slope)
    assert_within_ulps(y, prelu_reference(x, slope), 1)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx, dslope = ops.prelu_backward(dy, x, slope)
    assert dslope.shape == slope.shape and dslope.dtype == dtype
    negative = x.astype(np.float64) <= 0
    assert_within_ulps(dx, np.where(negative, slope.astype(np.float64) * dy, dy), 1)
    contributions = np.where(negative, dy.astype(np.float64) * x, 0.0).reshape(-1, channels)
    expected_dslope = contributions.sum(axis=0) if shared is None else contributions.sum().reshape(slope.shape)
    bound = (contributions.shape[0] * (channels if shared is not None else 1) + 2) * 1.2e-16 * \
        np.abs(contributions).sum(axis=0 if shared is None else None)
    assert_within_ulps(dslope, expected_dslope, 1, atol=bound)


@pytest.mark.parametrize("slope_shape", [(4,), (1,), ()])
def test_prelu_backward_by_finite_differences(slope_shape):
    rng = np.random.default_rng(5)
    x = away_from_kinks(rng.standard_normal((3, 5, 4)), (0.0,))
    slope = rng.uniform(-0.5, 1.5, slope_shape)
    check_by_finite_differences(ops.prelu, lambda dy: ops.prelu_backward(dy, x, slope), [x, slope], rng,
                                samples=30)


def test_prelu_in_place():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    slope = np.array([0.1, 0.2, 0.3], np.float32)
    y = ops.prelu(x, slope)
    assert ops.prelu(x, slope, out=x) is x
    np.testing.assert_array_equal(x, y)


# ---- maxout --------------------------------------------------------------------------------------------------


def test_maxout_groups_consecutive_channels_and_routes_ties_to_the_first():
    x = np.array([[1.0, 5.0, 2.0, 7.0, 7.0, 0.0]])  # k = 3: units [1, 5, 2] and [7, 7, 0]
    np.testing.assert_array_equal(ops.maxout(x, 3), [[5.0, 7.0]])
    np.testing.assert_array_equal(ops.maxout_backward(np.array([[10.0, 20.0]]), x, 3), [[0, 10, 0, 20, 0, 0]])
    nan = np.array([[1.0, np.nan, 3.0, np.nan]])
    assert np.isnan(ops.maxout(nan, 4)).all()
    np.testing.assert_array_equal(ops.maxout_backward(np.array([[1.0]]), nan, 4), [[0, 1, 0, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=arrays(), k=st.integers(1, 4), ties=st.booleans())
def test_maxout_matches_reference(dtype, data, k, ties):
    x64, rng = data
    x64 = np.repeat(x64.reshape(1) if x64.ndim == 0 else x64, k, axis=-1)  # k equal pieces per unit
    if not ties:
        x64 = x64 + rng.standard_normal(x64.shape)
    x = x64.astype(dtype)
    y = ops.maxout(x, k)
    expected, argmax = maxout_reference(x, k)
    np.testing.assert_array_equal(y, expected.astype(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected_dx = (np.arange(k) == argmax[..., None]) * dy[..., None]
    np.testing.assert_array_equal(ops.maxout_backward(dy, x, k), expected_dx.reshape(x.shape))


def test_maxout_backward_by_finite_differences():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 12))
    check_by_finite_differences(lambda x: ops.maxout(x, 3), lambda dy: [ops.maxout_backward(dy, x, 3)], [x], rng,
                                samples=30)


# ---- argument checks -------------------------------------------------------------------------------------------

X = np.zeros((2, 6), np.float32)


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.leaky_relu(X, -0.1), ValueError, "alpha must be >= 0, got -0.1"),
    (lambda: ops.elu(X, -1), ValueError, "alpha must be >= 0, got -1"),
    (lambda: ops.elu_backward(X, X, alpha=-2.0), ValueError, "alpha must be >= 0, got -2.0"),
    (lambda: ops.leaky_relu(X, "0.1"), TypeError, "alpha must be a real number, got '0.1'"),
    (lambda: ops.elu(X, np.nan), ValueError, "alpha must be finite"),
    (lambda: ops.softmax(X, 2), ValueError, "axis 2 is out of range for an array of 2 axes"),
    (lambda: ops.log_softmax(X, -3), ValueError, "axis -3 is out of range"),
    (lambda: ops.softmax_backward(X, X, axis=5), ValueError, "axis 5 is out of range"),
    (lambda: ops.softmax(X, 1.0), TypeError, "axis must be an int, got 1.0"),
    (lambda: ops.softmax(np.float32(1)), ValueError, "at least one axis"),
    (lambda: ops.maxout(X, 4), ValueError, "k must divide the last axis of x, got k=4 for x of shape \\(2, 6\\)"),
    (lambda: ops.maxout(X, 0), ValueError, "k must be >= 1, got 0"),
    (lambda: ops.maxout(X, 2.0), TypeError, "k must be an int, got 2.0"),
    (lambda: ops.maxout_backward(np.zeros((2, 2)), X, 2), ValueError, "dy must have shape \\(2, 3\\)"),
    (lambda: ops.prelu(X, np.zeros(5)), ValueError, "slope must have shape \\(6,\\).*got \\(5,\\)"),
    (lambda: ops.prelu(X, np.zeros((1, 6))), ValueError, "got \\(1, 6\\)"),
    (lambda: ops.prelu_backward(X, X, np.zeros(2)), ValueError, "slope must have shape"),
    (lambda: ops.prelu(X, np.zeros(6, np.int64)), TypeError, "slope must be a float32 or float64 array"),
    (lambda: ops.relu(np.zeros(3, np.int32)), TypeError, "x must be a float32 or float64 array, got dtype int32"),
    (lambda: ops.gelu(np.zeros(3, np.float16)), TypeError, "got dtype float16"),
    (lambda: ops.sigmoid_backward(np.zeros(3, bool), np.zeros(3)), TypeError, "dy must be a float32"),
    (lambda: ops.tanh_backward(np.zeros(3), np.zeros(4)), ValueError, "dy must have the shape \\(4,\\)"),
    (lambda: ops.gelu(X, "erf"), ValueError, "approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: ops.relu(X, out=np.zeros((2, 6), np.float64)), ValueError, "out must have shape \\(2, 6\\) and dtype"),
    (lambda: ops.relu(X, out=[0.0] * 12), TypeError, "out must be a numpy array"),
    (lambda: ops.relu(X, out=np.broadcast_to(np.float32(0), (2, 6))), ValueError, "out is read-only"),
    (lambda: ops.activation(X, "swish"), ValueError, "unknown activation 'swish'; known: linear, relu"),
    (lambda: ops.activation(X, "prelu"), ValueError, "unknown activation 'prelu'"),
    (lambda: ops.activation(X, "relu", alpha=0.1), TypeError, "'relu' takes no parameter 'alpha'"),
    (lambda: ops.activation_backward(X, X, "softmax", approximate="tanh"), TypeError,
     "takes no parameter 'approximate' \\(its parameters: axis\\)"),
])
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_empty_arrays():
    for name, params in NAMED:
        x = np.zeros((0, 3, 4))
        assert ops.activation(x, name, **params).shape == x.shape
        assert ops.activation_backward(x, x, name, **params).shape == x.shape
    assert ops.softmax(np.zeros((2, 0)), axis=1).shape == (2, 0)
    assert ops.maxout(np.zeros((0, 6)), 3).shape == (0, 2)
    dx, dslope = ops.prelu_backward(np.zeros((0, 3)), np.zeros((0, 3)), np.ones(3))
    assert dx.shape == (0, 3) and (dslope == 0).all()


# ---- the exp kernels -------------------------------------------------------------------------------------------

EXP_KERNELS = [k.name for k in available_kernels("exp")]


@pytest.mark.parametrize("kernel", EXP_KERNELS)
def test_exp_kernel_is_accurate_down_to_the_subnormals(kernel):
    # For x < -38, 1 + exp(x) rounds to 1, so sigmoid(x) is exp(x) itself, rounded once.
    x = np.concatenate([np.linspace(-745.5, -38, 200_001), [-708.39, -709.1, -744.44, -745.13, -746, -1e300]])
    with convkit.use_kernel(kernel):
        y = ops.sigmoid(x)
    assert_within_ulps(y, np.exp(x), 2)


@pytest.mark.parametrize("kernel", EXP_KERNELS)
def test_expm1_kernel_is_accurate_near_zero_and_saturates(kernel):
    # elu(x, alpha=1) is expm1(x) itself for x <= 0.
    tiny = -np.logspace(-320, 0, 20_001)
    x = np.concatenate([tiny, np.linspace(-60, 0, 200_001), [-0.0, -5e-324, -36.7, -37.5, -709.0, -1e300, -np.inf]])
    with convkit.use_kernel(kernel):
        y = ops.elu(x, 1.0)
    assert_within_ulps(y, np.expm1(x), 2)
    assert np.signbit(y[-7]) and y[-1] == -1.0


@pytest.mark.parametrize("kernel", EXP_KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_based_activations_with_each_exp_kernel(kernel, dtype):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((300, 37)) * rng.choice([0.1, 3.0, 40.0], (300, 1))).astype(dtype)
    x[0, :5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    dy = rng.standard_normal(x.shape).astype(dtype)
    with convkit.use_kernel(kernel):
        for name, ref, params in [("sigmoid", "sigmoid", {}), ("gelu", "gelu_tanh", {"approximate": "tanh"}),
                                  ("tanh", "tanh", {}), ("elu", "elu", {"alpha": 0.5})]:
            expected, slope = reference(x, ref, params)
            if ref == "gelu_tanh":
                expected[0, 2] = 0.0  # the limit at -inf
            y = ops.activation(x, name, **params)
            with np.errstate(invalid="ignore", divide="ignore"):
                condition = np.nan_to_num(np.abs(x * slope / expected), nan=0.0, posinf=0.0)
            assert_within_ulps(y, expected, 1 if dtype == np.float32 else 8 + 4 * condition)
        for axis in (0, -1):
            for log in (False, True):
                y = (ops.log_softmax if log else ops.softmax)(x, axis)
                expected = softmax_reference(x, axis, log)
                assert_within_ulps(y, expected, 2 if dtype == np.float32 else 8 + x.shape[axis],
                                   atol=(x.shape[axis] + 4) * 2.3e-16 * (1 + np.abs(np.nan_to_num(expected))))
                dx = (ops.log_softmax_backward if log else ops.softmax_backward)(dy, y, axis)
                with np.errstate(invalid="ignore"):
                    total = (dy if log else dy * expected).sum(axis=axis, keepdims=True)
                    expected_dx = dy - np.exp(expected) * total if log else expected * (dy - total)
                assert_within_ulps(dx, expected_dx, 4, atol=(x.shape[axis] + 4) * np.finfo(dtype).eps
                                   * (np.abs(dy).sum(axis=axis, keepdims=True) + np.abs(dy)))
