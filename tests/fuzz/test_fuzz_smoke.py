"""The fuzz harnesses themselves run (a few hundred inputs), and replay every input a fuzzing run found
crashing (regressions/<harness>/, each fixed since); skipped without atheris. Long runs: tools/fuzz.sh."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import convkit

pytest.importorskip("atheris")

HARNESSES = Path(__file__).resolve().parent


def run_harness(harness: str, arguments: list, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(convkit.__file__).resolve().parents[1]), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(HARNESSES / harness), "-timeout=20", f"-artifact_prefix={tmp_path}/",
                           *arguments], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


@pytest.mark.parametrize("harness", ["fuzz_ops.py", "fuzz_checkpoint.py"])
def test_harness_runs_a_few_hundred_inputs_cleanly(tmp_path, harness):
    done = run_harness(harness, ["-runs=300", "-seed=1"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 300 runs" in done.stderr


@pytest.mark.parametrize("harness", ["ops"])
def test_inputs_found_crashing_run_cleanly_now(tmp_path, harness):
    inputs = sorted(str(p) for p in (HARNESSES / "regressions" / harness).iterdir())
    assert inputs
    done = run_harness(f"fuzz_{harness}.py", inputs, tmp_path)  # libFuzzer runs each given file once
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(f"Running: {path}" in done.stderr for path in inputs)
