"""The examples and benchmark scripts run (tiny settings), so they cannot rot unnoticed."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT / "tests")
    assert done.returncode == 0, done.stderr
    return done


def test_quickstart_example():
    out = run(str(ROOT / "examples" / "quickstart.py"), "--size", "64").stdout
    assert "matmul 64x64" in out and "relu(x @ w + bias)" in out


def test_gemm_benchmark_quick_json():
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_gemm.py"), "--quick", "--json", "--repeats", "2").stdout)
    assert report["machine"]["threads"] == 2
    assert [row["shape"] for row in report["rows"]] == ["square 64", "LeNet-like"]
    assert all(row["convkit GFLOP/s"] > 0 and row["ratio"] > 0 for row in report["rows"])
