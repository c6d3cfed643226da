"""Every CUDA op, forward and backward, against the host op (the CPU backend) over the host tests'
hypothesis strategies: float32 within the reduction-length error bound, float64 tight. Runs only where a GPU
is present (the `device` machine); the CPU-side logic is tested in tests/test_cuda_api.py."""
import numpy as np
import pytest
from conv_testing import conv_cases, sum_tolerance, tolerance
from hypothesis import given, settings
from hypothesis import strategies as st
from test_norm import channels_last_shapes
from test_pool import pool_cases, random_input

import convkit
from convkit import _C, ops
from convkit import random as ckr

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not convkit.cuda.is_available(),
                                                   reason="needs a CUDA GPU (convkit.cuda.is_available())")]

DTYPES = [np.float32, np.float64]
dev = convkit.to_device


def host(t):
    return None if t is None else t.numpy()


def assert_close(gpu, cpu, bound):
    assert gpu.shape == cpu.shape and gpu.dtype == cpu.dtype
    np.testing.assert_array_less(np.abs(gpu.astype(np.float64) - cpu.astype(np.float64)), bound + 1e-300)


def rng_array(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- GEMM -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 70), ta=st.booleans(), tb=st.booleans(),
       bias=st.booleans(), activation=st.sampled_from([None, "relu", "leaky_relu"]), beta=st.sampled_from([0.0, 0.5]),
       seed=st.integers(0, 2**31))
def test_gemm_matches_host(dtype, m, n, k, ta, tb, bias, activation, beta, seed):
    rng = np.random.default_rng(seed)
    a = rng_array(rng, (k, m) if ta else (m, k), dtype)
    b = rng_array(rng, (n, k) if tb else (k, n), dtype)
    c = rng_array(rng, (m, n), dtype)
    bv = rng_array(rng, n, dtype) if bias else None
    options = dict(alpha=0.75, beta=beta, transpose_a=ta, transpose_b=tb, activation=activation)
    want = ops.gemm(a, b, c.copy() if beta else None, bias=bv, **options)
    got = ops.gemm(dev(a), dev(b), dev(c) if beta else None, bias=None if bv is None else dev(bv), **options)
    magnitude = (0.75 * np.abs(a).max(initial=0) * np.abs(b).max(initial=0) + np.abs(c).max(initial=0)
                 + (np.abs(bv).max() if bias else 0.0))
    assert_close(got.numpy(), want, sum_tolerance(dtype, k + 2, magnitude))


def test_matmul_vectors_and_tf32_opt_in():
    rng = np.random.default_rng(0)
    a, b = rng_array(rng, (64, 256), np.float32), rng_array(rng, 256, np.float32)
    np.testing.assert_allclose(ops.matmul(dev(a), dev(b)).numpy(), ops.matmul(a, b), rtol=1e-4, atol=1e-4)
    assert not convkit.cuda.allow_tf32()
    a2 = rng_array(rng, (128, 256), np.float32)
    convkit.cuda.set_allow_tf32(True)
    try:
        tf32 = ops.matmul(dev(a2), dev(a2.T.copy())).numpy()
    finally:
        convkit.cuda.set_allow_tf32(False)
    exact = a2.astype(np.float64) @ a2.T.astype(np.float64)
    # TF32 keeps 10 of float32's 23 mantissa bits of each operand: a relative error of 2^-11 per factor.
    np.testing.assert_array_less(np.abs(tf32 - exact), 2.0**-9 * (np.abs(a2) @ np.abs(a2.T)) + 1e-6)


# ---- convolution ----------------------------------------------------------------------------------------


def _zero_padded(case):
    x_shape, w_shape, options = case
    return x_shape, w_shape, dict(options, padding_mode="zeros")


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases(), bias=st.booleans(), activation=st.sampled_from([None, "relu"]), seed=st.integers(0, 2**31))
def test_conv_matches_host(dtype, case, bias, activation, seed):
    x_shape, w_shape, options = _zero_padded(case)
    rng = np.random.default_rng(seed)
    x, w = rng_array(rng, x_shape, dtype), rng_array(rng, w_shape, dtype)
    b = rng_array(rng, w_shape[-1], dtype) if bias else None
    want = ops.conv(x, w, b, activation=activation, **options)
    got = ops.conv(dev(x), dev(w), None if b is None else dev(b), activation=activation, **options)
    assert_close(got.numpy(), want, tolerance(dtype, x, w, options["groups"]) + (np.abs(b).max() if bias else 0) *
                 np.finfo(dtype).eps * 4)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases(), seed=st.integers(0, 2**31))
def test_conv_backward_matches_host(dtype, case, seed):
    x_shape, w_shape, options = _zero_padded(case)
    rng = np.random.default_rng(seed)
    x, w = rng_array(rng, x_shape, dtype), rng_array(rng, w_shape, dtype)
    dy_shape = ops.conv(x, w, **options).shape
    dy = rng_array(rng, dy_shape, dtype)
    want = ops.conv_backward(dy, x, w, **options)
    got = ops.conv_backward(dev(dy), dev(x), dev(w), **options)
    magnitude = max(np.abs(dy).max(initial=0) * max(np.abs(w).max(initial=0), np.abs(x).max(initial=0)), 1.0)
    terms = max(int(np.prod(w_shape)), int(np.prod(dy_shape[:-1])), 1)
    for g, h in zip(got, want):
        assert_close(host(g), h, sum_tolerance(dtype, terms, magnitude))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplier,stride,padding", [(1, 1, "same"), (2, 2, "valid"), (1, 2, "same")])
def test_depthwise_conv_forward_and_backward(dtype, multiplier, stride, padding):
    rng = np.random.default_rng(multiplier + stride)
    x, w = rng_array(rng, (3, 9, 8, 6), dtype), rng_array(rng, (3, 3, 1, 6 * multiplier), dtype)
    options = dict(stride=stride, padding=padding, groups=6)
    y = ops.conv(x, w, **options)
    assert_close(ops.conv(dev(x), dev(w), **options).numpy(), y, sum_tolerance(dtype, 9, 16.0))
    dy = rng_array(rng, y.shape, dtype)
    for g, h in zip(ops.conv_backward(dev(dy), dev(x), dev(w), **options), ops.conv_backward(dy, x, w, **options)):
        assert_close(g.numpy(), h, sum_tolerance(dtype, 3 * 9 * 8 * multiplier, 16.0))


# ---- pooling --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=pool_cases(with_dilation=True), seed=st.integers(0, 2**31))
def test_max_pool_forward_and_backward_match_host(dtype, case, seed):
    x_shape, pool_size, options = case
    x = random_input(x_shape, dtype, seed, strided=False)
    y, indices = ops.max_pool(x, pool_size, return_indices=True, **options)
    gy, gindices = ops.max_pool(dev(x), pool_size, return_indices=True, **options)
    np.testing.assert_array_equal(gy.numpy(), y)
    np.testing.assert_array_equal(gindices.numpy(), indices)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    want = ops.max_pool_backward(dy, x, pool_size, indices=indices, **options)
    got = ops.max_pool_backward(dev(dy), dev(x), pool_size, indices=gindices, **options)
    taps = int(np.prod(pool_size))  # overlapping windows add up to `taps` gradients in any order
    assert_close(got.numpy(), want, sum_tolerance(dtype, taps, 4.0))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=pool_cases(with_dilation=False), count_include_pad=st.booleans(), seed=st.integers(0, 2**31))
def test_avg_pool_forward_and_backward_match_host(dtype, case, count_include_pad, seed):
    x_shape, pool_size, options = case
    x = random_input(x_shape, dtype, seed, strided=False)
    y = ops.avg_pool(x, pool_size, count_include_pad=count_include_pad, **options)
    taps = int(np.prod(pool_size))
    got = ops.avg_pool(dev(x), pool_size, count_include_pad=count_include_pad, **options)
    assert_close(got.numpy(), y, sum_tolerance(dtype, taps, 1.0))
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    want = ops.avg_pool_backward(dy, x_shape, pool_size, count_include_pad=count_include_pad, **options)
    got = ops.avg_pool_backward(dev(dy), x_shape, pool_size, count_include_pad=count_include_pad, **options)
    assert_close(got.numpy(), want, sum_tolerance(dtype, taps, 4.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_and_adaptive_pooling(dtype):
    rng = np.random.default_rng(3)
    x = rng_array(rng, (4, 7, 9, 5), dtype)
    bound = sum_tolerance(dtype, 63, 4.0)
    assert_close(ops.global_avg_pool(dev(x)).numpy(), ops.global_avg_pool(x), bound)
    assert_close(ops.adaptive_avg_pool(dev(x), (3, 4)).numpy(), ops.adaptive_avg_pool(x, (3, 4)), bound)
    np.testing.assert_array_equal(ops.global_max_pool(dev(x)).numpy(), ops.global_max_pool(x))
    dy = rng_array(rng, (4, 5), dtype)
    assert_close(ops.global_avg_pool_backward(dev(dy), x.shape).numpy(), ops.global_avg_pool_backward(dy, x.shape),
                 bound)


# ---- batch normalization ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=channels_last_shapes(min_batch=2), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_batch_norm_forward_and_backward_match_host(dtype, shape, affine, seed):
    rng = np.random.default_rng(seed)
    x = (rng_array(rng, shape, dtype) * 3 + 1).astype(dtype)
    channels = shape[-1]
    gamma, beta = (rng_array(rng, channels, dtype), rng_array(rng, channels, dtype)) if affine else (None, None)
    run_mean, run_var = np.zeros(channels, dtype), np.ones(channels, dtype)
    y, stats = ops.batch_norm(x, gamma, beta, running_mean=run_mean, running_var=run_var)
    g_run_mean, g_run_var = dev(np.zeros(channels, dtype)), dev(np.ones(channels, dtype))
    d = (lambda a: None if a is None else dev(a))
    gy, gstats = ops.batch_norm(dev(x), d(gamma), d(beta), running_mean=g_run_mean, running_var=g_run_var)
    rows = x.size // channels
    bound = sum_tolerance(dtype, rows, 16.0)
    assert_close(gy.numpy(), y, bound)
    np.testing.assert_allclose(gstats.mean.numpy(), stats.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gstats.inv_std.numpy(), stats.inv_std, rtol=1e-10)
    assert_close(g_run_mean.numpy(), run_mean, bound)
    assert_close(g_run_var.numpy(), run_var, bound)
    dy = rng_array(rng, shape, dtype)
    for training in (True, False):
        want = ops.batch_norm_backward(dy, x, gamma, stats.mean, stats.inv_std, training=training)
        got = ops.batch_norm_backward(dev(dy), dev(x), d(gamma), gstats.mean, gstats.inv_std, training=training)
        for g, h in zip(got, want):
            if h is not None:
                assert_close(g.numpy(), h, sum_tolerance(dtype, rows, 64.0))
    y_eval, _ = ops.batch_norm(x, gamma, beta, running_mean=run_mean, running_var=run_var, training=False)
    gy_eval, _ = ops.batch_norm(dev(x), d(gamma), d(beta), running_mean=g_run_mean, running_var=g_run_var,
                                training=False)
    assert_close(gy_eval.numpy(), y_eval, bound)


# ---- activations, loss, dropout, SGD --------------------------------------------------------------------

def ulps_of(values, count):
    """`count` units in the last place of each value (NaN positions, compared as equal numbers: 1)."""
    finite = np.nan_to_num(np.abs(values), nan=1.0)
    return count * np.finfo(values.dtype).eps * np.maximum(finite, np.finfo(values.dtype).tiny)


ACTIVATION_CASES = [("relu", {}), ("relu6", {}), ("leaky_relu", {"alpha": 0.1}), ("elu", {"alpha": 0.7}),
                    ("sigmoid", {}), ("tanh", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
                    ("hard_sigmoid", {}), ("hard_swish", {})]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", ACTIVATION_CASES, ids=[f"{n}-{p}" for n, p in ACTIVATION_CASES])
def test_activations_match_host(dtype, name, params):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng_array(rng, 997, dtype) * 4, np.array([0.0, -0.0, 3.0, -3.0, 6.0, np.nan], dtype)])
    y = getattr(ops, name)(x, **params)
    gy = getattr(ops, name)(dev(x), **params)
    assert_close(np.nan_to_num(gy.numpy(), nan=7.0), np.nan_to_num(y, nan=7.0), ulps_of(y, 16))
    saved = x if ops.ACTIVATION_BACKWARD_INPUT[name] == "x" else y
    dy = rng_array(rng, x.shape, dtype)
    want = getattr(ops, f"{name}_backward")(dy, saved, **params)
    got = getattr(ops, f"{name}_backward")(dev(dy), dev(saved), **params)
    assert_close(np.nan_to_num(got.numpy(), nan=7.0), np.nan_to_num(want, nan=7.0), ulps_of(want, 32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_matches_host(dtype, reduction):
    rng = np.random.default_rng(7)
    logits = rng_array(rng, (37, 11), dtype) * 5
    labels = rng.integers(0, 11, 37)
    labels[3] = -100
    loss, dlogits = ops.softmax_cross_entropy(logits, labels, reduction=reduction)
    gloss, gdlogits = ops.softmax_cross_entropy(dev(logits), dev(labels), reduction=reduction)
    assert abs(gloss - loss) <= sum_tolerance(dtype, 37 * 11, 10.0) * max(abs(loss), 1)
    assert_close(gdlogits.numpy(), dlogits, sum_tolerance(dtype, 11, 1.0))
    labels[0] = 11
    with pytest.raises(ValueError, match="class index 11"):
        ops.softmax_cross_entropy(dev(logits), dev(labels))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=10)
@given(seed=st.integers(0, 2**64 - 1), rate=st.sampled_from([0.1, 0.5, 0.9]))
def test_dropout_masks_equal_the_host_masks(dtype, seed, rate):
    x = np.random.default_rng(1).standard_normal((3, 5, 7, 11)).astype(dtype)
    y, mask = ops.dropout(x, rate, generator=ckr.Generator(seed))
    gy, gmask = ops.dropout(dev(x), rate, generator=ckr.Generator(seed))
    np.testing.assert_array_equal(gmask.numpy().astype(bool), mask)
    np.testing.assert_array_equal(gy.numpy(), y)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(ops.dropout_backward(dev(dy), gmask, rate).numpy(),
                                  ops.dropout_backward(dy, mask, rate))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov,weight_decay,dampening", [(False, 0.0, 0.0), (True, 1e-4, 0.0), (False, 1e-3, 0.1)])
def test_sgd_step_equals_the_host_update(dtype, nesterov, weight_decay, dampening):
    rng = np.random.default_rng(9)
    p, g, v = (rng_array(rng, (1000,), dtype) for _ in range(3))
    gp, gg, gv = dev(p), dev(g), dev(v)
    options = dict(lr=0.05, momentum=0.9, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    for first in (True, False):
        _C.sgd_step([p], [g], [v], [first], **options)
        convkit.cuda.sgd_step([gp], [gg], [gv], [first], **options)
    np.testing.assert_array_equal(gp.numpy(), p)
    np.testing.assert_array_equal(gv.numpy(), v)


# ---- interop and errors -------------------------------------------------------------------------------------


def test_round_trips_and_dlpack_with_torch():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = dev(x)
    np.testing.assert_array_equal(t.numpy(), x)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    tt = torch.from_dlpack(t)
    assert tt.is_cuda and tt.data_ptr() == t.data_ptr
    np.testing.assert_array_equal(tt.cpu().numpy(), x)
    back = convkit.from_dlpack(tt * 2)
    np.testing.assert_array_equal(back.numpy(), 2 * x)
    np.testing.assert_array_equal(dev(torch.ones(3, device="cuda")).numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_addition(dtype):
    rng = np.random.default_rng(11)
    a, b = rng_array(rng, (5, 7), dtype), rng_array(rng, (5, 7), dtype)
    ga, gb = dev(a), dev(b)
    np.testing.assert_array_equal((ga + gb).numpy(), a + b)
    np.testing.assert_array_equal(ga.numpy(), a)  # + makes a new Tensor
    ga += gb
    np.testing.assert_array_equal(ga.numpy(), a + b)


def test_device_errors():
    x = dev(np.ones((2, 5, 5, 3), np.float32))
    with pytest.raises(TypeError, match="dtype float32"):
        ops.conv(x, dev(np.ones((3, 3, 3, 4), np.float64)))
    with pytest.raises(ValueError, match="padding_mode='reflect' is not implemented on cuda"):
        ops.conv(x, dev(np.ones((3, 3, 3, 4), np.float32)), padding="same", padding_mode="reflect")
    with pytest.raises(ValueError, match="indices"):
        ops.max_pool_backward(dev(np.ones((2, 2, 2, 3), np.float32)), x, 2, indices=dev(np.full((2, 2, 2, 3), 24)))
