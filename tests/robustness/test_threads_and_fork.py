"""Concurrency and process safety of the ops: Python threads sharing inputs, the GIL released while a
conv runs, results independent of the OpenMP thread count, fork() after OpenMP ran, spawn workers."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import convkit
from convkit import ops

# The directory convkit was imported from (the source tree, or a sanitizer build staged elsewhere).
ROOT = Path(convkit.__file__).resolve().parents[1]


def _calls(x, w, a, b):
    """Conv forward and backward, pooling and matmul on shared inputs: the work every thread repeats."""
    y = ops.conv(x, w, padding="same", stride=(1, 2))
    dx, dw, db = ops.conv_backward(y, x, w, padding="same", stride=(1, 2))
    pooled, idx = ops.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    return [y, dx, dw, db, pooled, idx, ops.avg_pool(x, 2), ops.matmul(a, b), ops.conv(x, w[:, :, :, :2])]


@pytest.fixture(scope="module")
def shared_inputs():
    rng = np.random.default_rng(8)
    return (rng.standard_normal((3, 13, 11, 8), dtype=np.float32), rng.standard_normal((3, 3, 8, 16), dtype=np.float32),
            rng.standard_normal((70, 90)), rng.standard_normal((90, 40)))


@pytest.mark.parametrize("threads", [1, 2])
def test_eight_python_threads_match_serial_bit_for_bit(shared_inputs, threads):
    convkit.set_num_threads(threads)
    expected = _calls(*shared_inputs)
    mismatches, errors = [], []

    def work():
        try:
            for _ in range(15):
                for got, want in zip(_calls(*shared_inputs), expected):
                    if not np.array_equal(got, want):
                        mismatches.append(got.shape)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors and not mismatches, (errors, mismatches)


def test_results_identical_for_one_and_two_openmp_threads(shared_inputs):
    x, w, _, _ = shared_inputs
    outputs = {}
    for threads in (1, 2):
        convkit.set_num_threads(threads)
        y, stats = ops.batch_norm(x)
        outputs[threads] = _calls(*shared_inputs) + [
            y, *ops.batch_norm_backward(y, x, None, stats.mean, stats.inv_std)[:1],
            ops.conv(x, np.ones((3, 3, 1, 8), np.float32), groups=8, padding="same"),
        ]
    for one, two in zip(outputs[1], outputs[2]):
        np.testing.assert_array_equal(one, two)


def test_heartbeat_keeps_ticking_during_a_long_conv():
    convkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 64, 64, 64), dtype=np.float32), rng.standard_normal((3, 3, 64, 64), dtype=np.float32)
    ops.conv(x, w, padding="same")  # warm up
    beats, stop = [], threading.Event()

    def heartbeat():
        while not stop.is_set():
            beats.append(time.perf_counter())
            time.sleep(0.001)

    beater = threading.Thread(target=heartbeat)
    beater.start()
    time.sleep(0.01)
    start = time.perf_counter()
    ops.conv_backward(ops.conv(x, w, padding="same"), x, w, padding="same")
    elapsed = time.perf_counter() - start
    stop.set()
    beater.join()
    during = np.array([t for t in beats if start <= t <= start + elapsed])
    assert len(during) > 10 and np.diff(during).max() < elapsed / 3, (elapsed, len(during))


def _run_script(source: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    try:
        # cwd=ROOT: `python -c` puts the working directory first on sys.path, so running from a source checkout
        # would shadow the installed package with the uncompiled sources.
        return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the script hung for {timeout} s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_conv_in_a_child_forked_after_openmp_ran_completes():
    # In its own interpreter, so that the OpenMP pool started here is the only one the child inherits.
    done = _run_script("""
        import os, numpy as np, convkit
        from convkit import ops
        convkit.set_num_threads(2)
        x = np.random.default_rng(1).standard_normal((4, 32, 32, 16), dtype=np.float32)
        w = np.ones((3, 3, 16, 32), np.float32)
        def work():
            dw = ops.conv_backward(np.ones((4, 30, 30, 32), np.float32), x, w, need="w")[1]
            return ops.conv(x, w, padding="same"), ops.max_pool(x, 2), dw
        parent = work()
        pid = os.fork()
        if pid == 0:
            same = all(np.array_equal(a, b) for a, b in zip(parent, work()))
            os._exit(0 if same and convkit.get_num_threads() == 1 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def _conv_sum(seed: int) -> float:
    x = np.random.default_rng(seed).standard_normal((2, 16, 16, 8))
    return float(ops.conv(x, np.ones((3, 3, 8, 4)), padding="same").sum())


def test_spawn_workers_run_ops():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(_conv_sum, range(4), chunksize=1)
    assert got == [_conv_sum(seed) for seed in range(4)]
