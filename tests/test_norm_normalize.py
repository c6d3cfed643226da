"""The forward pass with batch statistics in one call (_C.norm_normalize): with at least as many samples as
threads each thread takes whole samples, otherwise statistics and y run as two passes over x; both must give
the bits of the separate calls (statistics, then inv_std, then y), whatever the thread count."""
import numpy as np
import pytest

import convkit
from convkit import _C


def separate_calls(x4, eps, gamma, beta):
    mean, var = np.empty(x4.shape[::2]), np.empty(x4.shape[::2])
    _C.norm_statistics(x4, mean, var)
    inv_std = 1.0 / np.sqrt(var + eps)
    y4 = np.empty_like(x4)
    _C.norm_forward(x4, mean, inv_std, gamma, beta, y4)
    return y4, mean, var, inv_std


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("view", [(2, 900, 4, 3), (2, 35, 16, 1), (3, 1, 1, 70)])  # several blocks; InstanceNorm; one pixel
def test_normalize_gives_the_bits_of_separate_calls_for_any_thread_count(dtype, view):
    rng = np.random.default_rng(0)
    x4 = (rng.standard_normal(view) * 3 + 5).astype(dtype)
    channels = view[2] * view[3]
    gamma, beta = (rng.standard_normal(channels).astype(dtype) for _ in range(2))
    expected = separate_calls(x4, 1e-5, gamma, beta)
    for threads in (1, 2, 3, 4):  # samples >= threads, then samples < threads
        convkit.set_num_threads(threads)
        y4, mean, var, inv_std = np.empty_like(x4), *(np.empty(view[::2]) for _ in range(3))
        _C.norm_normalize(x4, 1e-5, gamma, beta, y4, mean, var, inv_std)
        for got, want in zip((y4, mean, var, inv_std), expected):
            np.testing.assert_array_equal(got, want)


def test_normalize_rejects_negative_eps():
    x4 = np.ones((2, 3, 1, 2))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        _C.norm_normalize(x4, -1.0, None, None, np.empty_like(x4), *(np.empty((2, 1)) for _ in range(3)))
