"""Concurrency and process safety of the ops: Python threads sharing inputs, the GIL released while a
conv runs, results independent of the OpenMP thread count (ops, and whole training runs), fork() after
OpenMP ran, spawn workers (ops, and data loading with augmentation)."""
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
from convkit import layers, ops
from convkit.data import augmentations
from convkit.data.loader import DataLoader

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


def _trained_weights(threads: int) -> list:
    """Weights after two epochs of Adam on a small CNN (conv, batch norm, depthwise conv, pooling, dropout,
    dense, softmax cross-entropy), every random draw seeded."""
    convkit.set_num_threads(threads)
    convkit.random.seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 12, 12, 3), dtype=np.float32), rng.integers(0, 4, 32)
    model = convkit.Sequential([
        layers.Conv2D(16, 3, padding="same", activation="relu", input_shape=(12, 12, 3)),
        layers.BatchNormalization(), layers.DepthwiseConv2D(3, padding="same"), layers.MaxPooling2D(2),
        layers.Dropout(0.25), layers.Flatten(), layers.Dense(4)])
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, seed=1, verbose=0)
    return [p.value for p in model.parameters()]


def test_training_is_identical_for_one_and_two_openmp_threads():
    one, two = _trained_weights(1), _trained_weights(2)
    assert len(one) == len(two) > 8
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def _loader() -> DataLoader:
    x = np.random.default_rng(3).integers(0, 256, (20, 12, 12, 3), dtype=np.uint8)
    augment = augmentations.Compose([augmentations.RandomCrop(10, padding=2), augmentations.RandomFlip(),
                                     augmentations.RandomRotation(15), augmentations.ColorJitter(0.2, 0.2, 0.2)])
    return DataLoader(x, np.arange(20), batch_size=8, seed=5, augment=augment, mean=[0.5] * 3, std=[0.25] * 3)


def _epoch_batches(job: tuple) -> list:
    loader, epoch = job
    loader.set_epoch(epoch)
    return list(loader)


def test_spawn_workers_load_and_augment_the_same_batches():
    """A DataLoader (with its augmentation pipeline) pickled to spawn workers serves each epoch exactly as it
    does in this process (the draws are seeded by seed, epoch and batch index)."""
    loader = _loader()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(_epoch_batches, [(loader, epoch) for epoch in range(3)], chunksize=1)
    for epoch, batches in enumerate(got):
        expected = _epoch_batches((_loader(), epoch))
        assert len(batches) == len(expected) == 3
        for (x, y), (x_expected, y_expected) in zip(batches, expected):
            np.testing.assert_array_equal(x, x_expected)
            np.testing.assert_array_equal(y, y_expected)
    assert not np.array_equal(got[0][0][0], got[1][0][0])  # epochs differ: the check above is not vacuous
