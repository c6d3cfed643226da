"""Build configuration, threads, kernel selection, GIL release and fork safety."""
import io
from contextlib import nullcontext
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import convkit
from convkit import ops

KERNEL_NAME = re.compile(r"^(f32|f64)-[a-z0-9]+-\d+x\d+-[a-z0-9]+$")


def test_show_config_reports_build_and_kernels():
    out = io.StringIO()
    convkit.show_config(file=out)
    text = out.getvalue()
    assert convkit.__version__ in text
    assert "OpenMP" in text and "threads" in text
    for k in convkit.kernels():
        if k.selected:
            assert k.name in text
    cfg = convkit.config()
    assert cfg["threads"] == convkit.get_num_threads()
    assert set(cfg["kernels"]) == {f"{family}/{dtype}" for family in ("gemm", "dwconv", "dconv", "norm", "pool")
                                   for dtype in ("f32", "f64")} | {"exp/f64"}


def test_kernel_list_is_well_formed():
    infos = convkit.kernels()
    assert all(KERNEL_NAME.match(k.name) for k in infos), [k.name for k in infos]
    for family, dtype in {(k.family, k.dtype) for k in infos}:
        members = [k for k in infos if (k.family, k.dtype) == (family, dtype)]
        assert sum(k.selected for k in members) == 1
        assert any(k.isa == "ref" and k.available for k in members), "every family needs its reference"
        assert next(k for k in members if k.available).selected, "the best available kernel is the default"


def test_use_kernel_restores_and_rejects_unknown_names():
    before = [k.name for k in convkit.kernels() if k.selected]
    with convkit.use_kernel("ref"):
        assert all(k.isa == "ref" for k in convkit.kernels() if k.selected)
    assert [k.name for k in convkit.kernels() if k.selected] == before
    with pytest.raises(ValueError, match="unknown kernel 'f32-gemm-1x1-nope'.*known kernels"):
        convkit.select_kernel("f32-gemm-1x1-nope")
    with pytest.raises(TypeError, match="3"):
        convkit.select_kernel(3)


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    # From tests/, so that `import convkit` finds the installed package, not the source tree.
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, cwd=os.path.dirname(__file__))


def test_convkit_kernel_environment_override():
    done = run_python("import convkit; print(sorted(k.isa for k in convkit.kernels() if k.selected))",
                      CONVKIT_KERNEL="ref")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(["ref"] * 11)  # gemm, dwconv, dconv, norm, pool: f32 and f64; exp (f64)
    bad = run_python("import convkit", CONVKIT_KERNEL="f32-gemm-9x9-bogus")
    assert bad.returncode != 0
    assert "CONVKIT_KERNEL='f32-gemm-9x9-bogus'" in bad.stderr and "known kernels" in bad.stderr


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)])
def test_set_num_threads_validates(bad, error):
    with pytest.raises(error, match=re.escape(repr(bad))):
        convkit.set_num_threads(bad)


def test_set_num_threads_round_trips():
    convkit.set_num_threads(1)
    assert convkit.get_num_threads() == 1
    convkit.set_num_threads(3)
    assert convkit.get_num_threads() == (3 if convkit.config()["openmp"] else 1)


def test_gil_is_released_during_kernels():
    """A heartbeat thread keeps beating while the main thread is inside a long matmul."""
    convkit.set_num_threads(1)
    a = np.random.default_rng(0).random((1536, 1536), dtype=np.float32)
    beats, stop = [], threading.Event()

    def heartbeat():
        while not stop.is_set():
            beats.append(time.perf_counter())
            time.sleep(0.001)

    ops.matmul(a, a)  # warm up (packing buffers)
    worker = threading.Thread(target=heartbeat)
    worker.start()
    time.sleep(0.01)
    start = time.perf_counter()
    for _ in range(3):
        ops.matmul(a, a)
    elapsed = time.perf_counter() - start
    stop.set()
    worker.join()
    during = [t for t in beats if start <= t <= start + elapsed]
    gaps = np.diff(during)
    assert len(during) > 10 and gaps.max() < elapsed / 3, (elapsed, len(during), gaps.max())


def test_python_threads_share_the_core_safely():
    rng = np.random.default_rng(3)
    a, b = rng.random((200, 300)), rng.random((300, 100))
    expected = ops.matmul(a, b)
    results = [None] * 8

    def work(i):
        for _ in range(20):
            results[i] = ops.matmul(a, b)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def _matmul_in_child(queue):
    a = np.ones((300, 300), np.float32)
    # Without OpenMP there is no thread pool to lose, hence no warning.
    expect_warning = pytest.warns(RuntimeWarning, match="single-threaded") if convkit.config()["openmp"] else nullcontext()
    with expect_warning:
        convkit.set_num_threads(2)
    queue.put((convkit.get_num_threads(), float(ops.matmul(a, a)[0, 0])))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_after_parallel_work_does_not_hang():
    convkit.set_num_threads(2)
    ops.matmul(np.ones((300, 300), np.float32), np.ones((300, 300), np.float32))  # start the thread pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_matmul_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("matmul in a forked child hung")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (1, 300.0)
