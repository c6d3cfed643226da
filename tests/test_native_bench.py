"""The convkit-bench executable (C++ timing without Python), as installed next to the extension: every case runs
with --quick and gives positive, finite numbers within sane fractions of the roofs measured in the same run."""
import csv
import io
import json
import math
import subprocess
import sys

import pytest

from convkit.cli import native_bench_path

EXECUTABLE = native_bench_path()
pytestmark = pytest.mark.skipif(not EXECUTABLE.is_file(), reason=f"{EXECUTABLE} was not built")

CONV_LAYERS = ["conv3x3", "conv1x1", "stem7x7s2", "conv3x3-256", "depthwise3x3", "dilated3x3", "lenet5x5", "conv3d",
               "conv1d", "conv3x3s2", "depthwise3x3s2"]
IM2COL_LAYERS = ["conv3x3", "stem7x7s2", "conv3x3-256", "dilated3x3", "lenet5x5", "conv3d", "conv1d", "conv3x3s2"]
MEMORY_OPS = [f"{op} {p}" for op in ("maxpool 2x2/2", "maxpool 3x3/2 p1", "avgpool 2x2/2", "batchnorm")
              for p in ("fwd", "bwd")]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(EXECUTABLE), *args], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def quick_report():
    return json.loads(run("--quick", "--json", "--threads", "2").stdout)


def test_every_case_runs_and_is_rated_against_its_roof(quick_report):
    machine, rows = quick_report["machine"], quick_report["rows"]
    assert machine["threads"] == (2 if machine["openmp"] == "yes" else 1)  # the team it ran with
    assert machine["cores"] >= 1 and machine["quick"] is True
    assert machine["cpu"] and machine["isa"] and "gemm" in machine["kernels"]
    assert machine["dram copy GB/s"] > 0
    names = [row["kernel"] for row in rows]
    expected = [f"{'depthwise' if layer.startswith('depthwise') else 'conv'} {layer} {p}"
                for layer in CONV_LAYERS for p in ("fwd", "dx", "dw")]
    expected += [f"im2col {layer}" for layer in IM2COL_LAYERS]
    expected += [op for i in range(0, len(MEMORY_OPS), 2) for _shape in (0, 1) for op in MEMORY_OPS[i:i + 2]]
    assert [n for n in names if not n.startswith("gemm ")] == expected
    assert sum(n.startswith("gemm square") for n in names) >= 1 and any("N=C_out" in n for n in names)
    peak = machine["fp32 fma peak GFLOP/s"]
    for row in rows:
        assert 0 < row["min ms"] <= row["median ms"] and math.isfinite(row["median ms"]), row
        rate = row["GFLOP/s"] if row["GB/s"] is None else row["GB/s"]
        assert (row["GFLOP/s"] is None) != (row["GB/s"] is None) and 0 < rate < math.inf, row
        if row["GB/s"] is not None or peak is not None:  # no FMA peak loop on non-x86 CPUs
            assert 0 < row["% of roof"] < 150, row
            assert row["roof"].startswith("copy " if row["GB/s"] is not None else "FMA peak "), row


def test_filter_and_csv():
    done = run("--quick", "--csv", "--repeats", "1", "--filter", "conv1d,avgpool")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["kernel"] for r in rows] == ["conv conv1d fwd", "conv conv1d dx", "conv conv1d dw", "im2col conv1d",
                                           *["avgpool 2x2/2 fwd", "avgpool 2x2/2 bwd"] * 2]
    assert all(float(r["median ms"]) > 0 and float(r["% of roof"]) > 0 for r in rows)
    assert all(r["GB/s"] == "" for r in rows[:3]) and all(r["GFLOP/s"] == "" for r in rows[3:])
    assert "# threads: " in done.stderr and "# cpu: " in done.stderr  # the description stays out of the CSV


def test_markdown_table_and_list():
    done = run("--quick", "--repeats", "1", "--threads", "1", "--filter", "batchnorm fwd")
    lines = done.stdout.splitlines()
    assert "# threads: 1" in lines and any(line.startswith("# fp32 fma peak GFLOP/s: ") for line in lines)
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| kernel | problem | median ms |") and len(table) == 2 + 2
    assert "[2/2] batchnorm fwd" in done.stderr  # progress, one line per case
    listed = run("--quick", "--list").stdout.splitlines()
    assert len(listed) == 3 + 3 * len(CONV_LAYERS) + len(IM2COL_LAYERS) + 2 * len(MEMORY_OPS)
    assert "conv conv3d dw\t2,16,12,12,12 -> 16, 3x3x3, p1" in listed  # tab-separated name and problem


@pytest.mark.parametrize("args, message", [
    (("--threads", "0"), "--threads must be a positive integer, got '0'"),
    (("--repeats", "x"), "--repeats must be a positive integer, got 'x'"),
    (("--bogus",), "unknown argument '--bogus'"),
    (("--filter", "no-such-case"), "no case matches --filter"),
    (("--kernel", "f32-gemm-9x9-avx9"), "unknown kernel 'f32-gemm-9x9-avx9'"),
])
def test_bad_arguments_fail_with_a_message(args, message):
    done = run(*args, check=False)
    assert done.returncode == 2 and message in done.stderr and done.stdout == ""


def test_convkit_bench_native_passes_options_on(tmp_path):
    done = subprocess.run([sys.executable, "-m", "convkit", "bench", "--native", "--quick", "--json", "--repeats", "1",
                           "--filter", "lenet5x5"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.split("\n", 1)[1])  # after the "== convkit-bench" line
    assert [row["kernel"] for row in report["rows"]] == [f"conv lenet5x5 {p}" for p in ("fwd", "dx", "dw")] + [
        "im2col lenet5x5"]
