"""Shared by the convolution tests: hypothesis strategies, error bounds, finite-difference gradient checks."""
import numpy as np

from convkit.testing import central_difference
from hypothesis import assume
from hypothesis import strategies as st

from convkit.conv_spec import conv_spec

MODES = ["zeros", "reflect", "replicate", "circular"]


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 9 if rank < 3 else 5)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    options = dict(
        stride=draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank))),
        dilation=draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank))),
        padding=draw(st.one_of(
            st.sampled_from(["valid", "same"]),
            st.integers(0, 2),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * rank),
        )),
        groups=groups,
        padding_mode=draw(st.sampled_from(MODES)),
    )
    x_shape = (draw(st.integers(0, 3)), *spatial, c_in)
    w_shape = (*kernel, c_in // groups, c_out)
    try:
        conv_spec(x_shape, w_shape, **options)
    except ValueError:
        assume(False)
    return x_shape, w_shape, options


def sum_tolerance(dtype, terms: int, magnitude: float) -> float:
    """Error bound of a sum of `terms` products, each at most `magnitude` in size, computed in dtype."""
    return (terms + 2) * np.finfo(dtype).eps * (magnitude * terms + 1)


def tolerance(dtype, x, w, groups):
    """Error bound of the forward conv: a reduction over prod(kernel) * C_in/groups terms."""
    terms = int(np.prod(w.shape[:-1]))
    return sum_tolerance(dtype, terms, np.abs(x).max(initial=0) * np.abs(w).max(initial=0))


def numeric_gradient(f, arr, indices, h=1e-5):
    """Central differences of the scalar f() at arr[index] for each index (arr is perturbed in place)."""
    return np.array([central_difference(f, arr, index, h) for index in indices])


def check_by_finite_differences(forward, backward, arrays, rng, samples=12):
    """forward(*arrays) -> y; backward(dy) -> gradients of sum(dy * y) for each array, None where not given."""
    dy = rng.standard_normal(forward(*arrays).shape)
    grads = backward(dy)
    for arr, grad in zip(arrays, grads):
        if arr is None:
            continue
        assert grad.shape == arr.shape
        flat = [np.unravel_index(i, arr.shape) for i in rng.choice(arr.size, min(samples, arr.size), replace=False)]
        numeric = numeric_gradient(lambda: float(np.sum(dy * forward(*arrays))), arr, flat)
        np.testing.assert_allclose(grad[tuple(np.array(flat).T)], numeric, rtol=1e-7, atol=1e-8)
