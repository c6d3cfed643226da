"""Normalization ops: against the float64 references, gradients by finite differences, BatchNorm's
training/inference semantics and running statistics, accuracy on large-mean inputs, thread-count
independence, argument checks."""
import numpy as np
import pytest
from conftest import available_kernels
from conv_testing import check_by_finite_differences
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.reference import (
    batch_norm_reference,
    group_norm_reference,
    instance_norm_reference,
    layer_norm_reference,
    local_response_norm_reference,
)

DTYPES = [np.float32, np.float64]
NORM_KERNELS = [(k.name, {"f32": np.float32, "f64": np.float64}[k.dtype]) for k in available_kernels("norm")]
F64_NORM_KERNELS = [name for name, dtype in NORM_KERNELS if dtype == np.float64]


@pytest.fixture(params=F64_NORM_KERNELS)
def f64_norm_kernel(request):
    """Runs a float64 gradient test once with each float64 normalization kernel."""
    with convkit.use_kernel(request.param):
        yield request.param


def assert_close_to_reference(y, ref, dtype):
    """float32 results are rounded once from double arithmetic; float64 ones carry a few ulps."""
    assert y.dtype == dtype
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)


def run_with_threads(threads, f):
    convkit.set_num_threads(threads)
    return f()


@st.composite
def channels_last_shapes(draw, min_batch=1):
    rank = draw(st.integers(0, 3))
    spatial = tuple(draw(st.integers(1, 6 if rank < 3 else 4)) for _ in range(rank))
    return (draw(st.integers(min_batch, 4)), *spatial, draw(st.integers(1, 11)))


def affine_params(rng, channels, dtype, given_):
    if not given_:
        return None, None
    return rng.standard_normal(channels).astype(dtype), rng.standard_normal(channels).astype(dtype)


# ---- BatchNorm ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,dtype", NORM_KERNELS, ids=[name for name, _ in NORM_KERNELS])
@given(shape=channels_last_shapes(), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_batch_norm_matches_reference(kernel, dtype, shape, affine, seed):
    with convkit.use_kernel(kernel):
        check_batch_norm_against_reference(shape, dtype, affine, seed)


def check_batch_norm_against_reference(shape, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    if x.size // shape[-1] < 2:
        x = np.concatenate([x, x + 1], axis=0)
    gamma, beta = affine_params(rng, shape[-1], dtype, affine)
    y, stats = ops.batch_norm(x, gamma, beta)
    assert_close_to_reference(y, batch_norm_reference(x, gamma, beta), dtype)
    axes = tuple(range(x.ndim - 1))
    np.testing.assert_allclose(stats.mean, x.astype(np.float64).mean(axis=axes), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.inv_std, 1 / np.sqrt(x.astype(np.float64).var(axis=axes) + 1e-5), rtol=1e-10)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 2), (2, 3, 2, 3), (2, 2, 2, 3, 2)])
def test_batch_norm_backward_by_finite_differences(f64_norm_kernel, training, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    running = dict(running_mean=rng.standard_normal(shape[-1]), running_var=rng.uniform(0.5, 2, shape[-1]))
    options = dict(training=training) if training else dict(training=False, **running)

    def forward(x, gamma, beta):
        return ops.batch_norm(x, gamma, beta, **{k: np.copy(v) if isinstance(v, np.ndarray) else v
                                                  for k, v in options.items()})[0]

    def backward(dy):
        _, stats = ops.batch_norm(x, gamma, beta, **options)
        return ops.batch_norm_backward(dy, x, gamma, *stats, training=training)

    check_by_finite_differences(forward, backward, [x, gamma, beta], rng)


def test_batch_norm_without_affine_backward_gives_gradients_of_implied_gamma_and_beta():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((6, 3, 4)), rng.standard_normal((6, 3, 4))
    _, stats = ops.batch_norm(x)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, None, *stats)
    ones = np.ones(4)
    _, stats1 = ops.batch_norm(x, ones, 0 * ones)
    dx1, dgamma1, dbeta1 = ops.batch_norm_backward(dy, x, ones, *stats1)
    np.testing.assert_array_equal(dx, dx1)
    np.testing.assert_array_equal(dgamma, dgamma1)
    np.testing.assert_array_equal(dbeta, dbeta1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_running_statistics_follow_pytorch_convention_step_by_step(dtype):
    rng = np.random.default_rng(3)
    channels, momentum, eps = 3, 0.25, 1e-3
    running_mean = np.zeros(channels, dtype=dtype)
    running_var = np.ones(channels, dtype=dtype)
    expected_mean, expected_var = np.zeros(channels), np.ones(channels)
    for step in range(4):
        x = (rng.standard_normal((4, 5, channels)) * (step + 1) + step).astype(dtype)
        y, _ = ops.batch_norm(x, running_mean=running_mean, running_var=running_var, momentum=momentum, eps=eps)
        # Training normalises with the batch's biased variance ...
        assert_close_to_reference(y, batch_norm_reference(x, eps=eps), dtype)
        # ... and the running variance moves towards the unbiased one.
        batch = x.astype(np.float64).reshape(-1, channels)
        expected_mean = (1 - momentum) * expected_mean + momentum * batch.mean(axis=0)
        expected_var = (1 - momentum) * expected_var + momentum * batch.var(axis=0, ddof=1)
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(running_mean, expected_mean, rtol=tol, atol=tol)
        np.testing.assert_allclose(running_var, expected_var, rtol=tol, atol=tol)
    # Inference uses the running statistics and leaves them alone.
    x = rng.standard_normal((2, 5, channels)).astype(dtype)
    saved = running_mean.copy(), running_var.copy()
    y, stats = ops.batch_norm(x, running_mean=running_mean, running_var=running_var, training=False, eps=eps)
    assert_close_to_reference(y, batch_norm_reference(x, eps=eps, running_mean=running_mean,
                                                      running_var=running_var), dtype)
    np.testing.assert_array_equal(running_mean, saved[0])
    np.testing.assert_array_equal(running_var, saved[1])
    np.testing.assert_array_equal(stats.mean, running_mean.astype(np.float64))


def test_batch_norm_defaults_are_pytorch_momentum_and_eps():
    x = np.arange(12.0).reshape(6, 2)
    running_mean, running_var = np.zeros(2), np.ones(2)
    _, stats = ops.batch_norm(x, running_mean=running_mean, running_var=running_var)
    np.testing.assert_allclose(running_mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1))
    np.testing.assert_allclose(stats.inv_std, 1 / np.sqrt(x.var(axis=0) + 1e-5))


@pytest.mark.parametrize("dtype,offset,var_tol", [(np.float32, 1e4, 1e-12), (np.float64, 1e8, 1e-9)])
def test_batch_norm_statistics_are_accurate_for_large_means(dtype, offset, var_tol):
    rng = np.random.default_rng(4)
    x = (offset + rng.standard_normal((16, 40, 40, 3))).astype(dtype)
    y, stats = ops.batch_norm(x, eps=0.0)
    # x - offset is exact, and normalization does not see a shift: the reference works on small values,
    # where even its plain float64 sums are accurate.
    centered = x.astype(np.float64) - offset
    var = centered.reshape(-1, 3).var(axis=0)
    np.testing.assert_allclose(1 / stats.inv_std**2, var, rtol=var_tol)
    np.testing.assert_allclose(y, batch_norm_reference(centered, eps=0.0), atol=2e-6 if dtype == np.float32 else 1e-7)


# ---- LayerNorm, GroupNorm, InstanceNorm ---------------------------------------------------------------


@st.composite
def grouped_cases(draw):
    """(kind, shape, parameter): parameter is normalized_ndim (layer), groups (group) or None (instance)."""
    kind = draw(st.sampled_from(["layer", "group", "instance"]))
    shape = draw(channels_last_shapes(min_batch=0))
    if kind == "layer":
        return kind, shape, draw(st.integers(1, len(shape)).filter(lambda k: 0 not in shape[len(shape) - k:]))
    if kind == "group":
        groups = draw(st.integers(1, 4))
        return kind, (*shape[:-1], groups * draw(st.integers(1, 3))), groups
    return kind, shape, None


def affine_shape(kind, shape, parameter):
    return shape[len(shape) - parameter:] if kind == "layer" else shape[-1:]


def grouped_forward(kind, parameter, x, gamma, beta, **kw):
    if kind == "layer":
        return ops.layer_norm(x, parameter, gamma, beta, **kw)
    if kind == "group":
        return ops.group_norm(x, parameter, gamma, beta, **kw)
    return ops.instance_norm(x, gamma, beta, **kw)


def grouped_backward(kind, parameter, dy, x, gamma, stats):
    if kind == "layer":
        return ops.layer_norm_backward(dy, x, parameter, gamma, *stats)
    if kind == "group":
        return ops.group_norm_backward(dy, x, parameter, gamma, *stats)
    return ops.instance_norm_backward(dy, x, gamma, *stats)


def grouped_reference(kind, parameter, x, gamma, beta, **kw):
    if kind == "layer":
        return layer_norm_reference(x, parameter, gamma, beta, **kw)
    if kind == "group":
        return group_norm_reference(x, parameter, gamma, beta, **kw)
    return instance_norm_reference(x, gamma, beta, **kw)


@pytest.mark.parametrize("kernel,dtype", NORM_KERNELS, ids=[name for name, _ in NORM_KERNELS])
@given(case=grouped_cases(), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_grouped_norms_match_reference(kernel, dtype, case, affine, seed):
    with convkit.use_kernel(kernel):
        check_grouped_norm_against_reference(case, dtype, affine, seed)


def check_grouped_norm_against_reference(case, dtype, affine, seed):
    kind, shape, parameter = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    gamma = beta = None
    if affine:
        params_shape = affine_shape(kind, shape, parameter)
        gamma, beta = (rng.standard_normal(params_shape).astype(dtype) for _ in range(2))
    y, stats = grouped_forward(kind, parameter, x, gamma, beta, eps=1e-3)
    assert y.shape == x.shape
    assert_close_to_reference(y, grouped_reference(kind, parameter, x, gamma, beta, eps=1e-3), dtype)
    assert stats.mean.dtype == stats.inv_std.dtype == np.float64


@pytest.mark.parametrize("kind,shape,parameter", [
    ("layer", (3, 4), 1), ("layer", (2, 3, 2, 3), 2), ("layer", (2, 2, 3), 3),
    ("group", (2, 3, 6), 3), ("group", (2, 2, 2, 4), 2), ("group", (3, 4), 2), ("group", (2, 2, 2, 2, 4), 1),
    ("instance", (2, 5, 3), None), ("instance", (2, 2, 3, 2), None),
])
def test_grouped_norm_backward_by_finite_differences(f64_norm_kernel, kind, shape, parameter):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    params_shape = affine_shape(kind, shape, parameter)
    gamma, beta = rng.standard_normal(params_shape), rng.standard_normal(params_shape)

    def forward(x, gamma, beta):
        return grouped_forward(kind, parameter, x, gamma, beta)[0]

    def backward(dy):
        return grouped_backward(kind, parameter, dy, x, gamma, grouped_forward(kind, parameter, x, gamma, beta)[1])

    check_by_finite_differences(forward, backward, [x, gamma, beta], rng)


@given(case=grouped_cases(), seed=st.integers(0, 2**31))
def test_grouped_norm_backward_on_random_shapes(case, seed):
    """float64 by finite differences, float32 against float64 on the same values (one rounding apart)."""
    kind, shape, parameter = case
    rng = np.random.default_rng(seed)
    params_shape = affine_shape(kind, shape, parameter)
    x = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    gamma, beta = (rng.standard_normal(params_shape).astype(np.float32).astype(np.float64) for _ in range(2))
    options = dict(eps=1e-2)  # keeps single-value groups (inv_std = eps^-1/2) well conditioned

    def forward(x, gamma, beta):
        return grouped_forward(kind, parameter, x, gamma, beta, **options)[0]

    def backward(dy, x=x, gamma=gamma):
        stats = grouped_forward(kind, parameter, x, gamma, beta.astype(x.dtype), **options)[1]
        return grouped_backward(kind, parameter, dy, x, gamma, stats)

    if x.size:  # (the helper samples elements)
        check_by_finite_differences(forward, backward, [x, gamma, beta], rng, samples=4)
    dy = rng.standard_normal(shape).astype(np.float32)
    for grad32, grad64 in zip(backward(dy, x.astype(np.float32), gamma.astype(np.float32)),
                              backward(dy.astype(np.float64))):
        assert grad32.dtype == np.float32
        np.testing.assert_allclose(grad32, grad64, rtol=1e-5, atol=1e-5 * np.abs(grad64).max(initial=1))


def test_statistics_shapes():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 6))
    assert ops.layer_norm(x, 2)[1].mean.shape == (2, 3)
    assert ops.group_norm(x, 3)[1].inv_std.shape == (2, 3)
    assert ops.instance_norm(x)[1].mean.shape == (2, 6)
    assert ops.batch_norm(x)[1].mean.shape == (6,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_and_layer_norm_are_accurate_for_large_means(dtype):
    rng = np.random.default_rng(8)
    x = (1e4 + rng.standard_normal((2, 30, 30, 8))).astype(dtype)
    centered = x.astype(np.float64) - 1e4
    np.testing.assert_allclose(ops.group_norm(x, 2, eps=0.0)[0], group_norm_reference(centered, 2, eps=0.0),
                               atol=2e-6 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(ops.layer_norm(x, 3, eps=0.0)[0], layer_norm_reference(centered, 3, eps=0.0),
                               atol=2e-6 if dtype == np.float32 else 1e-10)


# ---- Local response normalization ----------------------------------------------------------------------


@given(shape=channels_last_shapes(min_batch=0), size=st.integers(1, 7), dtype=st.sampled_from(DTYPES),
       options=st.fixed_dictionaries({"alpha": st.floats(1e-4, 2.0), "beta": st.floats(0.1, 1.5),
                                      "k": st.floats(0.5, 3.0)}),
       seed=st.integers(0, 2**31))
def test_local_response_norm_matches_reference(shape, size, dtype, options, seed):
    x = (np.random.default_rng(seed).standard_normal(shape) * 2).astype(dtype)
    y = ops.local_response_norm(x, size, **options)
    assert_close_to_reference(y, local_response_norm_reference(x, size, **options), dtype)


def test_local_response_norm_window_is_pytorchs():
    # size 4: channel c sees c-2 .. c+1 (zero-padded), alpha divided by the size.
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    sums = np.array([1 + 4, 1 + 4 + 9, 1 + 4 + 9 + 16, 4 + 9 + 16 + 25, 9 + 16 + 25])
    expected = x / (2.0 + 0.5 / 4 * sums) ** 0.75
    np.testing.assert_allclose(ops.local_response_norm(x, 4, alpha=0.5, beta=0.75, k=2.0), expected, rtol=1e-14)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("shape", [(3, 6), (2, 3, 7), (2, 2, 2, 2, 4)])
def test_local_response_norm_backward_by_finite_differences(size, shape):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape)
    options = dict(alpha=0.7, beta=0.8, k=1.5)
    check_by_finite_differences(lambda x: ops.local_response_norm(x, size, **options),
                                lambda dy: (ops.local_response_norm_backward(dy, x, size, **options),), [x], rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_response_norm_is_bit_identical_for_any_thread_count(dtype):
    rng = np.random.default_rng(11)
    x, dy = (rng.standard_normal((4, 27, 27, 96)).astype(dtype) for _ in range(2))

    def run():
        return ops.local_response_norm(x, 5, k=2.0), ops.local_response_norm_backward(dy, x, 5, k=2.0)

    results = [run_with_threads(t, run) for t in (1, 2, 3)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_local_response_norm_rejects_bad_arguments():
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        ops.local_response_norm(x, 0)
    with pytest.raises(TypeError, match="beta must be a real number, got 'a'"):
        ops.local_response_norm(x, 3, beta="a")
    with pytest.raises(ValueError, match="k must be > 0, got 0.0"):
        ops.local_response_norm(x, 3, k=0.0)
    with pytest.raises(ValueError, match="alpha must be >= 0, got -1.0"):
        ops.local_response_norm(x, 3, alpha=-1.0)
    with pytest.raises(ValueError, match=r"dy must have x's shape \(2, 4\), got \(4,\)"):
        ops.local_response_norm_backward(np.ones(4), x, 3)


# ---- BatchNorm and the grouped norms: thread-count independence, argument checks ------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_is_bit_identical_for_any_thread_count(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 37, 29, 24)).astype(dtype)  # several statistics blocks per channel
    dy = rng.standard_normal(x.shape).astype(dtype)
    gamma, beta = affine_params(rng, 24, dtype, True)

    def run():
        y, stats = ops.batch_norm(x, gamma, beta)
        return (y, *stats, *ops.batch_norm_backward(dy, x, gamma, *stats))

    results = [run_with_threads(t, run) for t in (1, 2, 3, 4)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind,parameter", [("layer", 2), ("group", 4), ("instance", None)])
def test_grouped_norms_are_bit_identical_for_any_thread_count(kind, parameter):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 41, 23, 16)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    params_shape = affine_shape(kind, x.shape, parameter)
    gamma, beta = (rng.standard_normal(params_shape).astype(np.float32) for _ in range(2))

    def run():
        y, stats = grouped_forward(kind, parameter, x, gamma, beta)
        return (y, *stats, *grouped_backward(kind, parameter, dy, x, gamma, stats))

    results = [run_with_threads(t, run) for t in (1, 2, 3)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_grouped_norms_reject_bad_arguments():
    x = np.ones((2, 3, 6))
    with pytest.raises(ValueError, match="groups must divide the 6 channels of x, got 4"):
        ops.group_norm(x, 4)
    with pytest.raises(ValueError, match="groups must be >= 1, got 0"):
        ops.group_norm(x, 0)
    with pytest.raises(TypeError, match="groups must be an int, got 2.0"):
        ops.group_norm(x, 2.0)
    with pytest.raises(ValueError, match="normalized_ndim must be <= x.ndim = 3, got 4"):
        ops.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3, 6\), got \(6,\)"):
        ops.layer_norm(x, 2, np.ones(6))
    with pytest.raises(ValueError, match=r"beta must have shape \(6,\), got \(3,\)"):
        ops.instance_norm(x, None, np.ones(3))
    with pytest.raises(ValueError, match=r"eps must be >= 0, got -0.5"):
        ops.group_norm(x, 2, eps=-0.5)
    with pytest.raises(ValueError, match=r"mean must have shape \(2, 3\), got \(2, 6\)"):
        ops.group_norm_backward(x, x, 3, None, np.zeros((2, 6)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x must have a non-empty last axis, got shape \(2, 0\)"):
        ops.instance_norm(np.ones((2, 0)))


@pytest.mark.parametrize("kwargs,match", [
    (dict(momentum=1.5), "momentum.*1.5"),
    (dict(momentum=True), "momentum.*True"),
    (dict(eps=-1.0), "eps.*-1.0"),
    (dict(gamma=np.ones(2)), r"gamma.*\(3,\).*\(2,\)"),
    (dict(training=False), "running_mean and running_var"),
    (dict(training=1), "training.*1"),
    (dict(running_mean=np.zeros(4)), r"running_mean.*\(3,\).*\(4,\)"),
    (dict(running_var=[1.0, 1.0, 1.0]), "running_var.*numpy array"),
])
def test_batch_norm_rejects_bad_arguments(kwargs, match):
    x = np.ones((4, 2, 3))
    gamma = kwargs.pop("gamma", None)
    with pytest.raises((ValueError, TypeError), match=match):
        ops.batch_norm(x, gamma, **kwargs)


def test_batch_norm_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"x.*at least 2 axes.*\(3,\)"):
        ops.batch_norm(np.ones(3))
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 1, 3\)"):
        ops.batch_norm(np.ones((1, 1, 3)))
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        ops.batch_norm(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"dy must have x's shape \(2, 3\), got \(3, 2\)"):
        ops.batch_norm_backward(np.ones((3, 2)), np.ones((2, 3)), None, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"inv_std must have shape \(3,\), got \(2,\)"):
        ops.batch_norm_backward(np.ones((2, 3)), np.ones((2, 3)), None, np.zeros(3), np.ones(2))
