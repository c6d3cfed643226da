"""Dropout, spatial dropout, DropConnect and stochastic depth: masks from the documented Philox stream, exact
scaling, mask statistics, backward passes (exactly, and by finite differences), thread-count independence,
the identity cases and argument checks."""
import math

import numpy as np
import pytest
from conv_testing import check_by_finite_differences
from hypothesis import given
from hypothesis import strategies as st
from random_testing import bernoulli_reference

import convkit
from convkit import ops
from convkit import random as ckr

DTYPES = [np.float32, np.float64]
RATES = [0.1, 0.5, 0.9]


def scaled(x, rate, dtype):
    """x / (1 - rate) as convkit computes it: x * (1 / (1 - rate)) in float64, rounded once."""
    return (np.asarray(x, np.float64) * (1.0 / (1.0 - rate))).astype(dtype)


def assert_within_binomial(kept: np.ndarray, keep: float, sigmas: float = 5.0):
    n = kept.size
    assert abs(kept.mean() - keep) <= sigmas * math.sqrt(keep * (1 - keep) / n), (kept.mean(), keep, n)


@st.composite
def channels_last(draw, max_size=5):
    rank = draw(st.integers(1, 3))
    return (draw(st.integers(0, 4)), *[draw(st.integers(1, max_size)) for _ in range(rank)], draw(st.integers(1, 6)))


# ---- Dropout --------------------------------------------------------------------------------------------------


@given(shape=st.lists(st.integers(0, 6), max_size=4).map(tuple), rate=st.floats(0.01, 0.99),
       seed=st.integers(0, 2**64 - 1), counter=st.integers(0, 2**40), dtype=st.sampled_from(DTYPES))
def test_dropout_keeps_the_stream_bernoullis_and_scales_exactly(shape, rate, seed, counter, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    g = ckr.Generator(seed)
    g.set_state({"algorithm": "philox4x32-10", "seed": seed, "counter": counter})
    y, mask = ops.dropout(x, rate, generator=g)
    assert y.dtype == dtype and y.shape == x.shape and mask.dtype == np.bool_ and mask.shape == x.shape
    np.testing.assert_array_equal(mask.reshape(-1), bernoulli_reference(seed, counter, x.size, 1.0 - rate))
    np.testing.assert_array_equal(y, np.where(mask, scaled(x, rate, dtype), 0))
    assert g.counter == counter + math.ceil(x.size / 4)


@pytest.mark.parametrize("rate", RATES)
def test_dropout_keeps_one_minus_rate_of_the_values(rate):
    _, mask = ops.dropout(np.ones((64, 50, 50), np.float32), rate, generator=ckr.Generator(1))
    assert_within_binomial(mask, 1 - rate)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_is_mask_times_dy_over_keep(dtype):
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((3, 7, 5)).astype(dtype), rng.standard_normal((3, 7, 5)).astype(dtype)
    rate = 0.3
    _, mask = ops.dropout(x, rate, generator=ckr.Generator(2))
    dx = ops.dropout_backward(dy, mask, rate)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(mask, scaled(dy, rate, dtype), 0))


def test_dropped_values_are_zero_even_if_not_finite():
    x = np.array([np.inf, -np.inf, np.nan] * 100, np.float32)
    y, mask = ops.dropout(x, 0.5, generator=ckr.Generator(3))
    assert 0 < mask.sum() < x.size
    assert np.all(y[~mask] == 0)
    np.testing.assert_array_equal(y[mask], x[mask])


def test_dropout_masks_do_not_depend_on_the_dtype_and_consecutive_masks_differ():
    x = np.ones((40, 40))
    _, m64 = ops.dropout(x, 0.5, generator=ckr.Generator(4))
    g = ckr.Generator(4)
    _, m32 = ops.dropout(x.astype(np.float32), 0.5, generator=g)
    _, m32_next = ops.dropout(x.astype(np.float32), 0.5, generator=g)
    np.testing.assert_array_equal(m64, m32)
    assert 0.3 < np.mean(m32 == m32_next) < 0.7


def test_dropout_uses_the_global_generator_by_default():
    x = np.ones(1000, np.float32)
    ckr.seed(5)
    y, mask = ops.dropout(x, 0.5)
    ckr.seed(5)
    np.testing.assert_array_equal(ops.dropout(x, 0.5)[1], mask)
    assert ckr.global_generator().counter == 250


def test_non_contiguous_input():
    x = np.random.default_rng(6).standard_normal((8, 10))[:, ::2].T
    y, mask = ops.dropout(x, 0.25, generator=ckr.Generator(7))
    _, mask_contiguous = ops.dropout(np.ascontiguousarray(x), 0.25, generator=ckr.Generator(7))
    np.testing.assert_array_equal(mask, mask_contiguous)
    np.testing.assert_array_equal(y, np.where(mask, scaled(x, 0.25, np.float64), 0))


# ---- Spatial dropout ------------------------------------------------------------------------------------------


@given(shape=channels_last(), rate=st.sampled_from(RATES), seed=st.integers(0, 1000), dtype=st.sampled_from(DTYPES))
def test_spatial_dropout_drops_whole_feature_maps(shape, rate, seed, dtype):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y, mask = ops.spatial_dropout(x, rate, generator=ckr.Generator(seed))
    n, c = shape[0], shape[-1]
    assert mask.shape == (n, c) and y.shape == x.shape and y.dtype == dtype
    np.testing.assert_array_equal(mask.reshape(-1), bernoulli_reference(seed, 0, n * c, 1.0 - rate))
    broadcast = mask.reshape(n, *[1] * (x.ndim - 2), c)
    np.testing.assert_array_equal(y, np.where(broadcast, scaled(x, rate, dtype), 0))
    dy = np.random.default_rng(seed + 1).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(ops.spatial_dropout_backward(dy, mask, rate),
                                  np.where(broadcast, scaled(dy, rate, dtype), 0))


@pytest.mark.parametrize("rate", RATES)
def test_spatial_dropout_keeps_one_minus_rate_of_the_maps(rate):
    _, mask = ops.spatial_dropout(np.ones((500, 2, 2, 64), np.float32), rate, generator=ckr.Generator(8))
    assert_within_binomial(mask, 1 - rate)


# ---- DropConnect ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_drop_connect_masks_and_scales_the_weights(dtype):
    w = np.random.default_rng(9).standard_normal((3, 3, 4, 8)).astype(dtype)
    w_dropped, mask = ops.drop_connect(w, 0.4, generator=ckr.Generator(10))
    assert mask.shape == w.shape and w_dropped.dtype == dtype
    np.testing.assert_array_equal(mask.reshape(-1), bernoulli_reference(10, 0, w.size, 0.6))
    np.testing.assert_array_equal(w_dropped, np.where(mask, scaled(w, 0.4, dtype), 0))
    assert_within_binomial(ops.drop_connect(np.ones((300, 300)), 0.4, generator=ckr.Generator(11))[1], 0.6)


def test_drop_connect_in_a_dense_layer_by_finite_differences():
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((5, 6)), rng.standard_normal((6, 4))
    rate = 0.5

    def forward(x, w):
        return ops.matmul(x, ops.drop_connect(w, rate, generator=ckr.Generator(13))[0])

    def backward(dy):
        w_dropped, mask = ops.drop_connect(w, rate, generator=ckr.Generator(13))
        return dy @ w_dropped.T, ops.drop_connect_backward(x.T @ dy, mask, rate)

    check_by_finite_differences(forward, backward, [x, w], rng, samples=24)


# ---- Stochastic depth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(16,), (16, 5), (16, 3, 4, 2)])
def test_stochastic_depth_drops_the_branch_per_sample(dtype, shape):
    rng = np.random.default_rng(14)
    shortcut, branch = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    rate = 0.5
    y, mask = ops.stochastic_depth(shortcut, branch, rate, generator=ckr.Generator(15))
    assert mask.shape == (16,) and y.dtype == dtype and 0 < mask.sum() < 16
    np.testing.assert_array_equal(mask, bernoulli_reference(15, 0, 16, 0.5))
    per_sample = mask.reshape(-1, *[1] * (len(shape) - 1))
    expected = (shortcut.astype(np.float64) + branch.astype(np.float64) * 2.0).astype(dtype)
    np.testing.assert_array_equal(y, np.where(per_sample, expected, shortcut))
    dy = rng.standard_normal(shape).astype(dtype)
    d_shortcut, d_branch = ops.stochastic_depth_backward(dy, mask, rate)
    np.testing.assert_array_equal(d_shortcut, dy)
    np.testing.assert_array_equal(d_branch, np.where(per_sample, scaled(dy, rate, dtype), 0))


def test_stochastic_depth_keeps_one_minus_rate_of_the_samples_and_is_identity_scaled_at_inference():
    shortcut, branch = np.zeros((100_000, 3), np.float32), np.ones((100_000, 3), np.float32)
    y, mask = ops.stochastic_depth(shortcut, branch, 0.2, generator=ckr.Generator(16))
    assert_within_binomial(mask, 0.8)
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(0.8 * 0.2 / 100_000) / 0.8  # unbiased: E[y] = shortcut + branch
    y_eval, mask_eval = ops.stochastic_depth(shortcut, branch, 0.2, training=False)
    assert mask_eval is None
    np.testing.assert_array_equal(y_eval, shortcut + branch)


def test_stochastic_depth_mixes_dtypes_in_float64():
    y, _ = ops.stochastic_depth(np.ones((4, 2), np.float32), np.ones((4, 2)), 0.5, generator=ckr.Generator(0))
    assert y.dtype == np.float64


# ---- Finite differences (float64, the mask held fixed by a fresh generator in each forward) -------------------


@pytest.mark.parametrize("op,backward,shape", [
    (ops.dropout, ops.dropout_backward, (3, 4, 5)),
    (ops.spatial_dropout, ops.spatial_dropout_backward, (3, 4, 5)),
    (ops.spatial_dropout, ops.spatial_dropout_backward, (2, 3, 2, 2, 4)),
    (ops.drop_connect, ops.drop_connect_backward, (3, 3, 2, 4)),
])
def test_backward_by_finite_differences(op, backward, shape):
    rng = np.random.default_rng(17)
    x = rng.standard_normal(shape)
    rate = 0.4
    _, mask = op(x, rate, generator=ckr.Generator(18))
    check_by_finite_differences(lambda x: op(x, rate, generator=ckr.Generator(18))[0],
                                lambda dy: [backward(dy, mask, rate)], [x], rng, samples=30)


def test_stochastic_depth_backward_by_finite_differences():
    rng = np.random.default_rng(19)
    shortcut, branch = rng.standard_normal((6, 3, 2)), rng.standard_normal((6, 3, 2))
    rate = 0.5
    _, mask = ops.stochastic_depth(shortcut, branch, rate, generator=ckr.Generator(20))
    assert 0 < mask.sum() < 6
    check_by_finite_differences(
        lambda s, b: ops.stochastic_depth(s, b, rate, generator=ckr.Generator(20))[0],
        lambda dy: ops.stochastic_depth_backward(dy, mask, rate), [shortcut, branch], rng, samples=30)


# ---- Threads, identities, arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("run", [
    lambda x, g: ops.dropout(x, 0.3, generator=g),
    lambda x, g: ops.spatial_dropout(x, 0.3, generator=g),
    lambda x, g: ops.stochastic_depth(x, 2 * x, 0.3, generator=g),
    lambda x, g: (ops.dropout_backward(x, ops.dropout(x, 0.3, generator=g)[1], 0.3),),
])
def test_results_are_identical_for_any_thread_count(run):
    x = np.random.default_rng(21).standard_normal((7, 33, 31, 19)).astype(np.float32)  # 136k elements
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(run(x, ckr.Generator(22)))
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("op", [ops.dropout, ops.spatial_dropout, ops.drop_connect])
def test_rate_zero_and_inference_are_the_identity_and_draw_nothing(op):
    x = np.ones((2, 3, 4), np.float32)
    g = ckr.Generator(23)
    for kwargs in (dict(rate=0.0), dict(rate=0.5, training=False)):
        y, mask = op(x, generator=g, **kwargs)
        assert y is x and mask is None
    assert g.counter == 0
    backward = {ops.dropout: ops.dropout_backward, ops.spatial_dropout: ops.spatial_dropout_backward,
                ops.drop_connect: ops.drop_connect_backward}[op]
    assert backward(x, None, 0.5) is x
    assert ops.stochastic_depth_backward(x, None, 0.5) == (x, x)


@pytest.mark.parametrize("rate,error,match", [
    (1.0, ValueError, r"rate must be in \[0, 1\), got 1.0 \(rate 1 would drop everything"),
    (1.5, ValueError, r"rate must be in \[0, 1\), got 1.5"),
    (-0.1, ValueError, r"rate must be in \[0, 1\), got -0.1"),
    (float("nan"), ValueError, "rate must be finite, got nan"),
    ("0.5", TypeError, "rate must be a real number, got '0.5'"),
])
def test_bad_rates(rate, error, match):
    x = np.ones((2, 3, 4))
    for call in (lambda: ops.dropout(x, rate), lambda: ops.spatial_dropout(x, rate),
                 lambda: ops.drop_connect(x, rate), lambda: ops.stochastic_depth(x, x, rate),
                 lambda: ops.dropout_backward(x, None, rate)):
        with pytest.raises(error, match=match):
            call()


def test_rejects_bad_arguments():
    x = np.ones((2, 3, 4), np.float32)
    with pytest.raises(TypeError, match="x must be a float32 or float64 array, got dtype int64"):
        ops.dropout(np.ones(3, np.int64), 0.5)
    with pytest.raises(TypeError, match="w must be a float32 or float64 array"):
        ops.drop_connect(np.ones(3, np.int32), 0.5)
    with pytest.raises(TypeError, match="training must be True or False, got 1"):
        ops.dropout(x, 0.5, training=1)
    with pytest.raises(TypeError, match="generator must be a convkit.random.Generator or None, got 3"):
        ops.dropout(x, 0.0, generator=3)
    with pytest.raises(ValueError, match=r"x must be \(N, \*spatial, C\) with 1 to 3 spatial axes, got shape \(2, 3\)"):
        ops.spatial_dropout(np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError, match=r"shortcut and branch must have one shape, got \(2, 3, 4\) and \(2, 3\)"):
        ops.stochastic_depth(x, np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError, match="branch must have a batch axis"):
        ops.stochastic_depth(np.float64(1.0), np.float64(1.0), 0.5)
    _, mask = ops.dropout(x, 0.5)
    with pytest.raises(TypeError, match="mask must be the bool numpy array the forward returned"):
        ops.dropout_backward(x, mask.astype(np.uint8), 0.5)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3, 4\), got \(2, 4\)"):
        ops.dropout_backward(x, mask[:, 0], 0.5)
    _, mask = ops.spatial_dropout(x, 0.5)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\), got \(2, 3, 4\)"):
        ops.spatial_dropout_backward(x, np.ones((2, 3, 4), bool), 0.5)
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\), got \(2, 4\)"):
        ops.stochastic_depth_backward(x, mask, 0.5)
