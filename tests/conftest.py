import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import convkit

# CI runs on 2 shared cores: fewer examples there, no deadlines anywhere (timings are not assertions).
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def available_kernels(family: str):
    return [k for k in convkit.kernels() if k.family == family and k.available]


@pytest.fixture(autouse=True)
def restore_threads():
    threads = convkit.get_num_threads()
    yield
    convkit.set_num_threads(threads)


def error_bound(a64: np.ndarray, b64: np.ndarray, dtype, k: int) -> np.ndarray:
    """Elementwise forward-error bound of a k-term dot product in `dtype`: (k + 2) * eps * |a| @ |b|."""
    eps = np.finfo(dtype).eps
    return (k + 2) * eps * (np.abs(a64) @ np.abs(b64)) + np.finfo(dtype).tiny
