"""The bad-input battery (cases.py), every case in a subprocess so that a crash fails its case only.

The cases are shared out over a few worker processes (run_cases.py) run side by side; a worker that dies
leaves its first unfinished case without a result, which is recorded as the crash (with the signal and
the tail of its stderr), and the worker's remaining cases are run again in a fresh process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convkit

from .cases import CASES

RUNNER = Path(__file__).resolve().parent / "run_cases.py"
# The directory convkit was imported from (the source tree, or a sanitizer build staged elsewhere).
ROOT = Path(convkit.__file__).resolve().parents[1]
WORKERS = 4
TIMEOUT_S = 120


def _start(names: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(RUNNER), *names], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _collect(names: list[str], proc: subprocess.Popen, results: dict, retry: list) -> None:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for line in out.splitlines():
        result = json.loads(line)
        results[result["name"]] = result
    unfinished = [n for n in names if n not in results]
    if unfinished:
        results[unfinished[0]] = {"name": unfinished[0], "outcome": "crashed", "returncode": proc.returncode,
                                  "stderr": err[-2000:]}
        retry.extend(unfinished[1:])


@pytest.fixture(scope="module")
def results() -> dict:
    found: dict = {}
    pending = sorted(CASES)
    while pending:
        shares = [pending[i::WORKERS] for i in range(WORKERS) if pending[i::WORKERS]]
        procs = [_start(share) for share in shares]
        pending = []
        for share, proc in zip(shares, procs):
            _collect(share, proc, found, pending)
    return found


def test_battery_is_large_enough():
    assert len(CASES) >= 60


def test_a_crash_is_attributed_to_its_case_and_the_rest_rerun():
    names = ["conv_stride_zero", "probe_segfault", "matmul_empty", "pool_empty_batch"]
    found, retry = {}, []
    _collect(names, _start(names), found, retry)
    assert found["conv_stride_zero"]["outcome"] == "raised"
    assert found["probe_segfault"]["outcome"] == "crashed" and found["probe_segfault"]["returncode"] < 0
    assert retry == ["matmul_empty", "pool_empty_batch"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, results: dict):
    case, result = CASES[name], results[name]
    assert result["outcome"] != "crashed", f"{name} crashed the process: {result}"
    if case.raises is None:
        assert result["outcome"] == "returned", f"{name} should work, raised {result}"
        return
    assert result["outcome"] == "raised", f"{name} returned instead of raising {case.raises}"
    assert any(t.__name__ in result["mro"] for t in case.raises), f"{name}: expected {case.raises}, got {result}"
    for fragment in case.fragments:
        assert fragment in result["message"], f"{name}: {fragment!r} missing from {result['message']!r}"
