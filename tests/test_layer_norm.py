"""LayerNorm's row kernels (csrc/ops/short_rows_norm.h): forward and backward against the float64 references
over row lengths that exercise every vector tail (values % 16, % 8, % 4) and row counts that leave partial
batches of four rows and partial blocks, short and long rows, gradients by finite differences, large-mean
accuracy, thread-count independence, bad arguments at the binding."""
import numpy as np
import pytest
from conftest import available_kernels
from conv_testing import check_by_finite_differences
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import _C, ops
from convkit.reference import layer_norm_backward_reference, layer_norm_reference

NORM_KERNELS = [(k.name, {"f32": np.float32, "f64": np.float64}[k.dtype]) for k in available_kernels("norm")]
KERNEL_IDS = [name for name, _ in NORM_KERNELS]
F64_NORM_KERNELS = [name for name, dtype in NORM_KERNELS if dtype == np.float64]
# float32 results are rounded from double statistics and coefficients: a few float32 ulps of the result, and
# the backward's float32 arithmetic a few ulps of its largest term.
FORWARD_TOL = {np.float32: 2e-6, np.float64: 1e-12}
BACKWARD_TOL = {np.float32: 1e-5, np.float64: 1e-11}


@st.composite
def layer_cases(draw):
    """(shape, normalized_ndim): up to 3 leading axes (0 to 13 rows in all) and 1 to 3 normalized axes."""
    leading = tuple(draw(st.lists(st.integers(0, 13), max_size=2)))
    normalized = tuple(draw(st.lists(st.integers(1, 40), min_size=1, max_size=3)))
    if np.prod(normalized) > 3000:
        normalized = normalized[:1]
    return (*leading, *normalized), len(normalized)


def random_affine(rng, shape, dtype, given_):
    if not given_:
        return None, None
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def check_against_references(shape, normalized_ndim, dtype, affine, rng, scale=2.0, offset=-1.0):
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = random_affine(rng, shape[len(shape) - normalized_ndim:], dtype, affine)
    y, stats = ops.layer_norm(x, normalized_ndim, gamma, beta, eps=1e-3)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, layer_norm_reference(x, normalized_ndim, gamma, beta, eps=1e-3),
                               rtol=FORWARD_TOL[dtype], atol=FORWARD_TOL[dtype])
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats.mean, x64.mean(axis=axes), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.inv_std, 1 / np.sqrt(x64.var(axis=axes) + 1e-3), rtol=1e-10)
    grads = ops.layer_norm_backward(dy, x, normalized_ndim, gamma, *stats)
    references = layer_norm_backward_reference(dy, x, normalized_ndim, gamma, eps=1e-3)
    # dx = inv_std * (dy*gamma - ...) cancels exactly on one-value rows: its error is relative to that term.
    inv_std = stats.inv_std.reshape(stats.inv_std.shape + (1,) * normalized_ndim)
    dx_terms = np.abs(inv_std * dy * (1.0 if gamma is None else gamma)).max(initial=1)
    for name, grad, ref in zip(("dx", "dgamma", "dbeta"), grads, references):
        assert grad.dtype == dtype and grad.shape == ref.shape, name
        tol = BACKWARD_TOL[dtype]
        scale = max(np.abs(ref).max(initial=1), dx_terms if name == "dx" else 0.0)
        np.testing.assert_allclose(grad, ref, rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("kernel,dtype", NORM_KERNELS, ids=KERNEL_IDS)
@given(case=layer_cases(), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_layer_norm_matches_references(kernel, dtype, case, affine, seed):
    shape, normalized_ndim = case
    with convkit.use_kernel(kernel):
        check_against_references(shape, normalized_ndim, dtype, affine, np.random.default_rng(seed))


@pytest.mark.parametrize("kernel,dtype", NORM_KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("shape,normalized_ndim", [
    ((3, 64), 1), ((9, 256), 1),            # the benchmark's row lengths, a partial batch of rows
    ((2, 5000), 1), ((2, 3, 70001), 1),     # long rows (past L1, an odd tail)
    ((2, 30, 30, 8), 3),                    # a whole image per row
])
def test_layer_norm_on_long_and_benchmark_rows(kernel, dtype, shape, normalized_ndim):
    with convkit.use_kernel(kernel):
        check_against_references(shape, normalized_ndim, dtype, True, np.random.default_rng(1))


@pytest.mark.parametrize("shape,normalized_ndim", [((5, 3), 1), ((6, 7), 1), ((2, 3, 2, 9), 2), ((17,), 1)])
def test_layer_norm_backward_by_finite_differences(shape, normalized_ndim):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    gamma, beta = random_affine(rng, shape[len(shape) - normalized_ndim:], np.float64, True)
    for kernel in F64_NORM_KERNELS:
        with convkit.use_kernel(kernel):
            check_by_finite_differences(
                lambda x, gamma, beta: ops.layer_norm(x, normalized_ndim, gamma, beta)[0],
                lambda dy: ops.layer_norm_backward(dy, x, normalized_ndim, gamma,
                                                   *ops.layer_norm(x, normalized_ndim, gamma, beta)[1]),
                [x, gamma, beta], rng)


@pytest.mark.parametrize("kernel,dtype", NORM_KERNELS, ids=KERNEL_IDS)
def test_layer_norm_is_accurate_for_large_means(kernel, dtype):
    """Rows of 1e4 + N(0, 1): the statistics in double with a shift lose nothing to the offset."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((37, 64))).astype(dtype)
    centered = x.astype(np.float64) - 1e4
    with convkit.use_kernel(kernel):
        y, stats = ops.layer_norm(x, 1, eps=0.0)
    np.testing.assert_allclose(y, layer_norm_reference(centered, 1, eps=0.0), atol=FORWARD_TOL[dtype])
    np.testing.assert_allclose(1 / stats.inv_std**2, centered.var(axis=1), rtol=1e-10)
    np.testing.assert_allclose(stats.mean - 1e4, centered.mean(axis=1), atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1000, 64), (3, 7, 37), (40, 1, 1000)])
def test_layer_norm_is_bit_identical_for_any_thread_count(dtype, shape):
    """Several blocks of rows (dgamma, dbeta) and shares that split batches of four rows differently."""
    rng = np.random.default_rng(4)
    x, dy = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta = random_affine(rng, shape[-1:], dtype, True)

    def run():
        y, stats = ops.layer_norm(x, 1, gamma, beta)
        return (y, *stats, *ops.layer_norm_backward(dy, x, 1, gamma, *stats))

    results = []
    for threads in (1, 2, 3, 4):
        convkit.set_num_threads(threads)
        results.append(run())
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_layer_norm_without_affine_equals_ones_and_zeros():
    rng = np.random.default_rng(5)
    x, dy = rng.standard_normal((6, 10)), rng.standard_normal((6, 10))
    y, stats = ops.layer_norm(x, 1)
    y1, stats1 = ops.layer_norm(x, 1, np.ones(10), np.zeros(10))
    np.testing.assert_array_equal(y, y1)
    for a, b in zip(ops.layer_norm_backward(dy, x, 1, None, *stats), ops.layer_norm_backward(dy, x, 1, np.ones(10), *stats1)):
        np.testing.assert_array_equal(a, b)


def test_row_binding_rejects_bad_views_and_eps():
    x = np.ones((2, 1, 1, 3), np.float32)
    y, mean, inv_std = np.empty_like(x), np.empty((2, 1)), np.empty((2, 1))
    with pytest.raises(ValueError, match=r"takes x as \(R, 1, 1, K\)"):
        _C.short_rows_norm_forward(np.ones((2, 2, 1, 3), np.float32), 1e-5, None, None, np.empty((2, 2, 1, 3), np.float32),
                                   mean, inv_std)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        _C.short_rows_norm_forward(x, -1.0, None, None, y, mean, inv_std)
    with pytest.raises(ValueError, match=r"mean must have shape \(N, G\) = \(2, 1\)"):
        _C.short_rows_norm_forward(x, 1e-5, None, None, y, np.empty((3, 1)), inv_std)
    with pytest.raises(ValueError, match="gamma must be a contiguous 1-D array of length 3"):
        _C.short_rows_norm_backward(x, x, mean, inv_std, np.ones(4, np.float32), y, None, None)
    with pytest.raises(ValueError, match=r"eps must be >= 0, got -0.5"):
        ops.layer_norm(np.ones((2, 3)), 1, eps=-0.5)
