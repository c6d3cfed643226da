"""The fuzz harnesses themselves run (a few hundred inputs); skipped without atheris. Long runs: tools/fuzz.sh."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import convkit

pytest.importorskip("atheris")

HARNESSES = Path(__file__).resolve().parent


@pytest.mark.parametrize("harness", ["fuzz_ops.py", "fuzz_checkpoint.py"])
def test_harness_runs_a_few_hundred_inputs_cleanly(tmp_path, harness):
    env = dict(os.environ, PYTHONPATH=str(Path(convkit.__file__).resolve().parents[1]), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(HARNESSES / harness), "-runs=300", "-seed=1", "-timeout=20",
                           f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 300 runs" in done.stderr
