"""Max, average, adaptive and global pooling, forward and backward, against the NumPy float64 references."""
import numpy as np
import pytest
from conftest import available_kernels
from conv_testing import check_by_finite_differences
from hypothesis import assume, given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.pool_spec import pool_spec
from convkit.reference import (
    adaptive_avg_pool_reference,
    adaptive_max_pool_reference,
    avg_pool_reference,
    max_pool_reference,
)


@st.composite
def pool_cases(draw, with_dilation):
    rank = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 9 if rank < 3 else 5)) for _ in range(rank))
    x_shape = (draw(st.integers(0, 3)), *spatial, draw(st.integers(1, 9)))
    per_axis = lambda lo, hi: st.one_of(st.integers(lo, hi), st.tuples(*[st.integers(lo, hi)] * rank))  # noqa: E731
    pool_size = draw(per_axis(1, 4))
    options = dict(
        stride=draw(st.one_of(st.none(), per_axis(1, 3))),
        padding=draw(st.one_of(
            st.sampled_from(["valid", "same"]),
            st.integers(0, 2),
            st.tuples(*[st.integers(0, 2)] * rank),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * rank),
        )),
        ceil_mode=draw(st.booleans()),
    )
    if with_dilation:
        options["dilation"] = draw(per_axis(1, 3))
    try:
        pool_spec(x_shape, pool_size, **options)
    except ValueError:
        assume(False)
    return x_shape, pool_size, options


def random_input(x_shape, dtype, seed, strided):
    """Distinct values in [0, 1), at least 1 / x.size apart (no ties), as a non-contiguous view when `strided`."""
    size = int(np.prod(x_shape))
    x = (np.random.default_rng(seed).permutation(size).reshape(x_shape) / max(size, 1)).astype(dtype)
    return np.repeat(x, 2, axis=-1)[..., ::2] if strided else x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=pool_cases(with_dilation=True), strided=st.booleans(), seed=st.integers(0, 2**31))
def test_max_pool_matches_reference(dtype, case, strided, seed):
    x_shape, pool_size, options = case
    x = random_input(x_shape, dtype, seed, strided)
    y, indices = ops.max_pool(x, pool_size, **options, return_indices=True)
    ref_y, ref_indices = max_pool_reference(x, pool_size, **options)
    assert y.dtype == dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(y, ref_y.astype(dtype))
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(ops.max_pool(x, pool_size, **options), y)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    expected = np.zeros((x_shape[0], int(np.prod(x_shape[1:-1])), x_shape[-1]), np.float64)
    n, _, c = np.indices((x_shape[0], int(np.prod(y.shape[1:-1])), x_shape[-1]))
    np.add.at(expected, (n, indices.reshape(n.shape), c), dy.reshape(n.shape))
    dx = ops.max_pool_backward(dy, x, pool_size, **options, indices=indices)
    np.testing.assert_allclose(dx, expected.reshape(x_shape), rtol=0, atol=1e3 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(ops.max_pool_backward(dy, x, pool_size, **options), dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=pool_cases(with_dilation=False), count_include_pad=st.booleans(), strided=st.booleans(),
       seed=st.integers(0, 2**31))
def test_avg_pool_matches_reference(dtype, case, count_include_pad, strided, seed):
    x_shape, pool_size, options = case
    x = random_input(x_shape, dtype, seed, strided)
    y = ops.avg_pool(x, pool_size, **options, count_include_pad=count_include_pad)
    ref = avg_pool_reference(x, pool_size, **options, count_include_pad=count_include_pad)
    assert y.dtype == dtype and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=100 * np.finfo(dtype).eps, atol=100 * np.finfo(dtype).eps * x.size)


@given(case=pool_cases(with_dilation=False), count_include_pad=st.booleans(), seed=st.integers(0, 2**31))
def test_avg_pool_backward_by_finite_differences(case, count_include_pad, seed):
    x_shape, pool_size, options = case
    assume(x_shape[0] > 0)
    x = random_input(x_shape, np.float64, seed, False)
    options["count_include_pad"] = count_include_pad
    check_by_finite_differences(lambda x: ops.avg_pool(x, pool_size, **options),
                                lambda dy: (ops.avg_pool_backward(dy, x.shape, pool_size, **options),),
                                [x], np.random.default_rng(seed), samples=6)


@given(case=pool_cases(with_dilation=True), seed=st.integers(0, 2**31))
def test_max_pool_backward_by_finite_differences(case, seed):
    x_shape, pool_size, options = case
    assume(x_shape[0] > 0)
    x = random_input(x_shape, np.float64, seed, False)  # values further apart than 2 h: no tie within a step
    check_by_finite_differences(lambda x: ops.max_pool(x, pool_size, **options),
                                lambda dy: (ops.max_pool_backward(dy, x, pool_size, **options),),
                                [x], np.random.default_rng(seed), samples=6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(rank=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2**31))
def test_adaptive_and_global_pooling(dtype, rank, data, seed):
    spatial = tuple(data.draw(st.integers(1, 9 if rank < 3 else 5)) for _ in range(rank))
    x_shape = (data.draw(st.integers(0, 3)), *spatial, data.draw(st.integers(1, 9)))
    output_size = tuple(data.draw(st.integers(1, 9)) for _ in range(rank))
    x = random_input(x_shape, dtype, seed, data.draw(st.booleans()))
    y, indices = ops.adaptive_max_pool(x, output_size, return_indices=True)
    ref_y, ref_indices = adaptive_max_pool_reference(x, output_size)
    np.testing.assert_array_equal(y, ref_y.astype(dtype))
    np.testing.assert_array_equal(indices, ref_indices)
    tol = 100 * np.finfo(dtype).eps
    np.testing.assert_allclose(ops.adaptive_avg_pool(x, output_size), adaptive_avg_pool_reference(x, output_size),
                               rtol=tol, atol=tol * x.size)
    axes = tuple(range(1, rank + 1))
    np.testing.assert_array_equal(ops.global_max_pool(x), x.max(axis=axes, initial=-np.inf).astype(dtype))
    np.testing.assert_allclose(ops.global_avg_pool(x), x.astype(np.float64).mean(axis=axes), rtol=tol, atol=tol)


@given(rank=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2**31))
def test_adaptive_and_global_backward_by_finite_differences(rank, data, seed):
    spatial = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    x_shape = (data.draw(st.integers(1, 2)), *spatial, data.draw(st.integers(1, 4)))
    output_size = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    x = random_input(x_shape, np.float64, seed, False)
    rng = np.random.default_rng(seed)
    cases = [
        (lambda x: ops.adaptive_max_pool(x, output_size),
         lambda dy: ops.adaptive_max_pool_backward(dy, x, output_size)),
        (lambda x: ops.adaptive_avg_pool(x, output_size),
         lambda dy: ops.adaptive_avg_pool_backward(dy, x.shape, output_size)),
        (ops.global_max_pool, lambda dy: ops.global_max_pool_backward(dy, x)),
        (ops.global_avg_pool, lambda dy: ops.global_avg_pool_backward(dy, x.shape)),
    ]
    for forward, backward in cases:
        check_by_finite_differences(forward, lambda dy: (backward(dy),), [x], rng, samples=6)


@pytest.mark.parametrize("kernel", available_kernels("pool"), ids=lambda k: k.name)
def test_every_pool_kernel_matches_reference(kernel):
    """Channel counts around the vector widths, so that both the vector steps and the tails run."""
    dtype = {"f32": np.float32, "f64": np.float64}[kernel.dtype]
    with convkit.use_kernel(kernel.name):
        for channels in (1, 3, 4, 5, 8, 9, 17):
            x = random_input((2, 7, 6, channels), dtype, channels, False)
            x[0, 1, 1, ::2] = np.nan
            x[1, 2:4, 2:4] = x[1, 2, 2]  # ties
            options = dict(stride=2, padding=1)
            y, indices = ops.max_pool2d(x, 3, **options, return_indices=True)
            ref_y, ref_indices = max_pool_reference(x, 3, **options)
            np.testing.assert_array_equal(y, ref_y.astype(dtype))
            np.testing.assert_array_equal(indices, ref_indices)
            tol = 100 * np.finfo(dtype).eps
            y = ops.avg_pool2d(x, 3, **options)
            np.testing.assert_allclose(y, avg_pool_reference(x, 3, **options), rtol=tol, atol=tol)
            dy = np.ones_like(y)
            dx = ops.avg_pool_backward(dy, x.shape, 3, **options)
            np.testing.assert_allclose(dx, _windows_holding(x.shape, 3, **options) / 9, rtol=tol, atol=tol)


def _scattered(dy, x_shape, indices):
    """dx of max pooling, independently of the core: each dy added at the input position its index names, in
    dy's dtype and in output order (as the core adds), so that the results are equal to the bit."""
    expected = np.zeros((x_shape[0], int(np.prod(x_shape[1:-1])), x_shape[-1]), dy.dtype)
    n, _, c = np.indices((x_shape[0], int(np.prod(dy.shape[1:-1])), x_shape[-1]))
    np.add.at(expected, (n, indices.reshape(n.shape), c), dy.reshape(n.shape))
    return expected.reshape(x_shape)


# Overlapping windows (accumulating scatter), disjoint ones covering every pixel but a last row and column
# (7x6: store-only scatter plus zeroed rows), disjoint ones with gaps between them (stride 3), and dilated
# overlapping windows that skip columns.
SCATTER_CASES = [dict(pool_size=3, stride=2, padding=1), dict(pool_size=2), dict(pool_size=2, stride=3),
                 dict(pool_size=2, stride=1, dilation=2)]


@pytest.mark.parametrize("kernel", available_kernels("pool"), ids=lambda k: k.name)
def test_every_pool_kernel_max_backward_matches_reference(kernel):
    """Both scatters (accumulating, store-only) with vector steps and tails, NaN and ties, against np.add.at;
    an index of another window is refused."""
    dtype = {"f32": np.float32, "f64": np.float64}[kernel.dtype]
    with convkit.use_kernel(kernel.name):
        for channels in (1, 3, 4, 5, 8, 9, 17):
            x = random_input((2, 7, 6, channels), dtype, channels, False)
            x[0, 1, 1, ::2] = np.nan
            x[1, 2:4, 2:4] = x[1, 2, 2]  # ties
            for case in SCATTER_CASES:
                y, indices = ops.max_pool2d(x, **case, return_indices=True)
                dy = np.random.default_rng(channels).standard_normal(y.shape).astype(dtype)
                dx = ops.max_pool_backward(dy, x, **case, indices=indices)
                np.testing.assert_array_equal(dx, _scattered(dy, x.shape, indices), err_msg=str(case))
                indices[1, -1, -1, -1] = indices[1, 0, 0, -1]  # a position of the first window, not the last's
                with pytest.raises(ValueError, match="not a position its window reads"):
                    ops.max_pool_backward(dy, x, **case, indices=indices)


@pytest.mark.parametrize("case", SCATTER_CASES[:2], ids=["overlapping", "disjoint"])
def test_max_pool_backward_of_negative_zero_is_positive_zero(case):
    """dx is a sum from +0 (taps no index names get +0 too), whichever scatter runs."""
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 9)).astype(np.float32)
    y = ops.max_pool2d(x, **case)
    dx = ops.max_pool_backward(np.full_like(y, -0.0), x, **case)
    assert (dx == 0).all() and not np.signbit(dx).any()


def _windows_holding(x_shape, pool_size, stride, padding):
    """How many windows of a 2-D sliding pooling read each input pixel (every window divides by the same 9)."""
    counts = np.zeros(x_shape[1:3])
    for i in range(0, x_shape[1] + 2 * padding - pool_size + 1, stride):
        for j in range(0, x_shape[2] + 2 * padding - pool_size + 1, stride):
            rows = slice(max(i - padding, 0), i - padding + pool_size)
            counts[rows, max(j - padding, 0):j - padding + pool_size] += 1
    return np.broadcast_to(counts[None, :, :, None], x_shape)


COURSE_BLOCK = np.array([[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], np.float32)


def test_course_example():
    x = COURSE_BLOCK.reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(ops.max_pool2d(x, 2, stride=2)[0, ..., 0], [[100, 184], [12, 45]])
    np.testing.assert_array_equal(ops.avg_pool2d(x, 2, stride=2)[0, ..., 0], [[36, 80], [12, 15]])
    np.testing.assert_array_equal(ops.max_pool2d(x, 2)[0, ..., 0], [[100, 184], [12, 45]])  # stride = pool_size


def test_ceil_mode_and_count_include_pad_by_hand():
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)  # 1 2 3 4 5
    assert ops.max_pool1d(x, 2).ravel().tolist() == [2, 4]
    assert ops.max_pool1d(x, 2, ceil_mode=True).ravel().tolist() == [2, 4, 5]  # last window overhangs
    # padded 0 1 2 3 4 0; windows start at -1 and 2; a third would start in the right padding: dropped
    assert ops.max_pool1d(x[:, :4], 2, stride=3, padding=1, ceil_mode=True).ravel().tolist() == [1, 4]
    # windows (pad, 1, 2), (2, 3, 4), (4, 5, pad): divisor 3 with the padding, 2 or 3 without
    assert ops.avg_pool1d(x, 3, stride=2, padding=1).ravel().tolist() == pytest.approx([1, 3, 3])
    assert ops.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False).ravel().tolist() == [1.5, 3, 4.5]
    # ceil_mode's extra window [4, 5] plus the overhang: the overhang is not counted, as in PyTorch
    assert ops.avg_pool1d(x, 2, ceil_mode=True).ravel().tolist() == [1.5, 3.5, 5]
    y, idx = ops.max_pool1d(x, 3, stride=2, padding="same", return_indices=True)
    assert y.ravel().tolist() == [2, 4, 5] and idx.ravel().tolist() == [1, 3, 4]


def test_ties_and_nan():
    x = np.array([[3, 3], [1, 3]], np.float64).reshape(1, 2, 2, 1)
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    assert y.item() == 3 and idx.item() == 0  # first maximum in window order
    dx = ops.max_pool_backward(np.ones((1, 1, 1, 1)), x, 2)
    assert dx.ravel().tolist() == [1, 0, 0, 0]
    for nan_at in range(4):
        x = np.array([1.0, 5.0, -2.0, 0.5]).reshape(1, 2, 2, 1)
        x.ravel()[nan_at] = np.nan
        y, idx = ops.max_pool2d(x, 2, return_indices=True)
        assert np.isnan(y.item()) and idx.item() == nan_at
    x = np.array([np.nan, 1.0, np.nan]).reshape(1, 3, 1)
    y, idx = ops.max_pool1d(x, 3, return_indices=True)
    assert np.isnan(y.item()) and idx.item() == 0
    y, idx = ops.global_max_pool(np.full((1, 3, 2), -np.inf), return_indices=True)
    assert (y == -np.inf).all() and (idx == 0).all()  # -inf input still gets a valid index


@pytest.mark.parametrize("shape", [(1, 37, 23, 40), (7, 19, 19, 24)], ids=["channel-blocks", "images"])
def test_pooling_does_not_depend_on_thread_count(shape):
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    dy = np.random.default_rng(7).standard_normal(ops.avg_pool2d(x, 3, stride=2, padding=1).shape).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append([
            *ops.max_pool2d(x, 3, stride=2, padding=1, return_indices=True),
            ops.avg_pool2d(x, 3, stride=2, padding=1),
            ops.max_pool_backward(dy, x, 3, stride=2, padding=1),
            ops.max_pool_backward(np.ones_like(ops.max_pool2d(x, 2)), x, 2),
            ops.avg_pool_backward(dy, x.shape, 3, stride=2, padding=1),
            ops.adaptive_avg_pool(x, (4, 5)),
        ])
    for result in results[1:]:
        for got, first in zip(result, results[0]):
            np.testing.assert_array_equal(got, first)


def test_empty_batch():
    x = np.zeros((0, 4, 4, 3), np.float32)
    assert ops.max_pool2d(x, 2).shape == (0, 2, 2, 3)
    assert ops.avg_pool_backward(np.zeros((0, 2, 2, 3), np.float32), x.shape, 2).shape == x.shape
    assert ops.global_avg_pool(x).shape == (0, 3)


BAD_POOL = [
    (ops.max_pool2d, (0,), {}, ValueError, "pool_size"),
    (ops.max_pool2d, (2,), dict(stride=(1, 0)), ValueError, "stride"),
    (ops.max_pool2d, (2,), dict(dilation=-1), ValueError, "dilation"),
    (ops.max_pool2d, (2,), dict(padding="full"), ValueError, "full"),
    (ops.max_pool2d, (2,), dict(padding=3), ValueError, "padding"),  # windows of padding only
    (ops.max_pool2d, (9,), {}, ValueError, "pool_size 9"),
    (ops.max_pool2d, (2,), dict(ceil_mode="yes"), TypeError, "ceil_mode"),
    (ops.max_pool2d, (2,), dict(return_indices=1), TypeError, "return_indices"),
    (ops.avg_pool2d, (2,), dict(count_include_pad=None), TypeError, "count_include_pad"),
    (ops.adaptive_avg_pool, ((2, 0),), {}, ValueError, "output_size"),
    (ops.max_pool1d, (2,), {}, ValueError, "max_pool1d expects x of rank 3"),
]


@pytest.mark.parametrize("op,args,options,error,match", BAD_POOL)
def test_bad_pool_arguments(op, args, options, error, match):
    with pytest.raises(error, match=match):
        op(np.ones((1, 4, 4, 3), np.float32), *args, **options)


def test_bad_pool_inputs():
    x = np.ones((1, 4, 4, 3), np.float32)
    with pytest.raises(TypeError, match="int64"):
        ops.max_pool2d(x.astype(np.int64), 2)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 2, 2, 3\)"):
        ops.max_pool_backward(np.ones((1, 3, 3, 3)), x, 2)
    with pytest.raises(ValueError, match="index 16"):
        ops.max_pool_backward(np.ones((1, 2, 2, 3)), x, 2, indices=np.full((1, 2, 2, 3), 16))
    with pytest.raises(TypeError, match="x_shape"):
        ops.avg_pool_backward(np.ones((1, 2, 2, 3)), "shape", 2)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 3\)"):
        ops.global_avg_pool_backward(np.ones((1, 2)), x.shape)


def test_core_rejects_windows_outside_the_input():
    from convkit import _C

    x, y = np.ones((1, 1, 1, 4, 2), np.float32), np.empty((1, 1, 1, 2, 2), np.float32)
    one = ([0], [1], [1], 1)
    for width in [([0, 3], [2, 5], [2, 2], 1), ([0, 2], [2, 2], [2, 2], 1), ([0, 2], [2, 4], [2, 2], 0),
                  ([0, 2], [2, 4], [1, 2], 1)]:
        with pytest.raises(ValueError, match="pool axis 2"):
            _C.avg_pool_forward(x, y, [one, one, width], True)


def test_max_pool_backward_rejects_an_index_outside_its_window():
    """The backward pass gathers each dx from the windows that read it: an index that names a real input
    position, but one its window does not read, is an error rather than a silently dropped gradient."""
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    _, idx = ops.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(ops.max_pool_backward(np.ones((1, 2, 2, 1)), x, 2, indices=idx).ravel(),
                                  [0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1])
    idx[0, 1, 1, 0] = 0  # position (0, 0) belongs to window (0, 0) only
    with pytest.raises(ValueError, match="index 0 .* not a position its window reads"):
        ops.max_pool_backward(np.ones((1, 2, 2, 1)), x, 2, indices=idx)
