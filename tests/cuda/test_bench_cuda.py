"""benchmarks/bench_cuda.py runs (tiny settings) and its correctness checks pass, on a GPU with PyTorch."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import convkit

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not convkit.cuda.is_available(), reason="needs a CUDA GPU")]


def test_bench_cuda_quick_json():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cuda.py"), "--quick", "--json"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cases = {row["case"].split(" n=")[0] for row in report["rows"]}
    assert {"conv r50-stem7x7s2", "batch_norm", "train step ResNet-18 32x32", "train step ResNet-50 64x64"} <= cases
    assert all(row["convkit ms"] > 0 and row["torch ms"] > 0 for row in report["rows"])
