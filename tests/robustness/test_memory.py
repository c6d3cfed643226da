"""Repeated calls do not leak: 1,000 conv/pool calls grow the resident set by less than 5 MB."""
from __future__ import annotations

import os

import numpy as np
import pytest

from convkit import ops

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


# Under AddressSanitizer (tools/asan.sh preloads it) freed memory waits in a quarantine of up to 256 MB, so
# the resident set grows without any leak: there, finding leaks is LeakSanitizer's job, not these tests'.
rss_measurable = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm") or "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="needs /proc, and a process without ASan (its quarantine keeps freed memory resident)")


@rss_measurable
def test_thousand_conv_and_pool_calls_do_not_grow_rss():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 6, 6, 8), dtype=np.float32), rng.standard_normal((3, 3, 8, 8), dtype=np.float32)

    def step():
        y = ops.conv(x, w, padding=1, padding_mode="reflect")
        ops.conv_backward(y, x, w, padding=1, padding_mode="reflect")
        ops.conv(x, w[:, :, :1], groups=8)
        pooled, idx = ops.max_pool(y, 2, return_indices=True)
        ops.max_pool_backward(pooled, y, 2, indices=idx)
        ops.avg_pool(y, 3, padding=1)
        try:  # the error path must not leak either
            ops.conv(x, w, stride=0)
        except ValueError:
            pass

    for _ in range(50):  # warm up: thread-local scratch, caches of pool windows
        step()
    before = resident_bytes()
    for _ in range(1000):
        step()
    grown = resident_bytes() - before
    assert grown < 5 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over 1,000 calls"
