"""The examples and benchmark scripts run (tiny settings), so they cannot rot unnoticed."""
import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT / "tests")
    assert done.returncode == 0, done.stderr
    return done


def test_quickstart_example():
    out = run(str(ROOT / "examples" / "quickstart.py"), "--size", "64").stdout
    assert "matmul 64x64" in out and "relu(x @ w + bias)" in out and "conv2d 3x3 16->32" in out


def test_gemm_benchmark_quick_json():
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_gemm.py"), "--quick", "--json", "--repeats", "2").stdout)
    assert report["machine"]["threads"] == 2
    assert [row["shape"] for row in report["rows"]] == ["square 64", "LeNet-like"]
    assert all(row["convkit GFLOP/s"] > 0 and row["ratio"] > 0 for row in report["rows"])


HAS_TORCH = importlib.util.find_spec("torch") is not None
CONV_LAYERS = ["conv3x3", "conv1x1", "stem7x7s2", "conv3x3-256", "depthwise3x3", "dilated3x3", "lenet5x5", "conv3d",
               "conv1d", "conv3x3s2"]


HAS_TF = importlib.util.find_spec("tensorflow") is not None


def test_conv_benchmark_quick_json():
    """Every layer is checked against every peer and timed, forward and forward+backward; the NumPy reference is
    always among the peers, PyTorch and TensorFlow when installed."""
    args = ("--quick", "--json", "--repeats", "1")
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_conv.py"), *args).stdout)
    machine = report["machine"]
    assert machine["threads"] == 2 and machine["backward"]
    expected = ["torch"] * HAS_TORCH + ["numpy"] + ["tf"] * HAS_TF
    assert list(machine["peers"]) == expected
    assert [row["layer"] for row in report["rows"]] == CONV_LAYERS
    timed = [f"{who} {label} {what}" for label in ("fwd", "f+b")
             for who, what in [("convkit", "GF/s"), *[(peer, w) for peer in expected for w in ("GF/s", "ratio")]]]
    assert all(row[key] > 0 for row in report["rows"] + report["summary"][:1] for key in timed)
    if "torch" in expected:
        assert all(layout in ("NCHW", "channels_last") for row in report["rows"] for layout in row["torch layout"].split("/"))
        assert report["rows"][CONV_LAYERS.index("conv1d")]["torch layout"] == "NCHW/NCHW"  # no channels_last in 1-D
    assert report["notes"][0].startswith("≥ 20x NumPy on every layer: fwd ")


def test_conv_benchmark_csv_and_target_line():
    """--peers numpy alone; the CSV table on stdout, the description and the 20x NumPy check on stderr."""
    done = run(str(ROOT / "benchmarks" / "bench_conv.py"), "--quick", "--csv", "--repeats", "1", "--peers", "numpy",
               "--layers", "lenet5x5,conv1d")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["layer"] for row in rows] == ["lenet5x5", "conv1d", "geomean", "min"]
    assert all(float(row["numpy fwd ratio"]) > 0 for row in rows)
    verdict = "yes" if min(float(row["numpy fwd ratio"]) for row in rows[:2]) >= 20 else "no"
    assert f"≥ 20x NumPy on every layer: fwd {verdict} (min " in done.stderr
    assert "# threads: 2 for every library" in done.stderr and "# machine: " in done.stderr


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed")
def test_conv_benchmark_skips_missing_tensorflow():
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_conv.py"), "--quick", "--json", "--repeats", "1",
                            "--peers", "numpy,tf", "--layers", "conv1d").stdout)
    assert list(report["machine"]["peers"]) == ["numpy"]
    assert report["machine"]["peers_skipped"] == ["tf: tensorflow is not installed"]


NORM_POOL_OPS = ["batchnorm", "maxpool2", "maxpool3", "avgpool2", "layernorm", "groupnorm"]


@pytest.mark.parametrize("peer", [
    "auto",
    pytest.param("numpy", marks=pytest.mark.skipif(not HAS_TORCH, reason="without PyTorch, auto runs the NumPy peer")),
])
def test_norm_pool_benchmark_quick_json(peer):
    """Every op and tiny shape is checked against the peer and timed, in all three passes, with the copy roof."""
    args = ("--quick", "--json", "--repeats", "1", "--peer", peer)
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_norm_pool.py"), *args).stdout)
    assert report["machine"]["threads"] == 2 and report["machine"]["dram_copy_gbps"] > 0
    assert report["machine"]["peer"].split()[0] == ("torch" if peer == "auto" and HAS_TORCH else "numpy")
    assert [row["op"] for row in report["rows"]] == [op for op in NORM_POOL_OPS for _ in range(2)]
    timed = [f"{p} {what}" for p in ("fwd", "bwd", "f+b") for what in ("GB/s", "% roof", "ratio")]
    assert all(row[key] > 0 for row in report["rows"] for key in ["copy GB/s", *timed])
    assert all(report["summary"][0][f"{p} ratio"] > 0 for p in ("fwd", "bwd", "f+b"))


TRAIN_NETS = ["lenet5", "resnet18", "mobilenet", "conv3d"]


@pytest.mark.parametrize("peer", [
    "auto",
    pytest.param("none", marks=pytest.mark.skipif(not HAS_TORCH, reason="without PyTorch, auto runs convkit alone")),
])
def test_train_benchmark_quick_json(peer):
    """Every network trains, is checked against its PyTorch twin (weights copied, logits and one SGD step
    and gradients compared) when torch is the peer, is timed, and has its peak memory measured in a subprocess."""
    args = ("--quick", "--json", "--repeats", "1", "--rss-steps", "1", "--peer", peer)
    report = json.loads(run(str(ROOT / "benchmarks" / "bench_train.py"), *args).stdout)
    with_torch = peer == "auto" and HAS_TORCH
    assert report["machine"]["threads"] == 2 and report["machine"]["peer"].split()[0] == ("torch" if with_torch else "none")
    assert [row["net"] for row in report["rows"]] == TRAIN_NETS
    for row in report["rows"]:
        assert row["convkit img/s"] > 0 and row["convkit MiB"] >= 0 and row["params"] > 0
        if with_torch:
            assert row["torch img/s"] > 0 and row["ratio"] > 0 and row["torch MiB"] >= 0
            assert row["torch layout"] in ("NCHW", "channels_last") and row["max logit diff 1e-6"] < 100
        else:
            assert row["torch img/s"] is None and row["ratio"] is None and row["max logit diff 1e-6"] is None


def test_train_benchmark_csv():
    done = run(str(ROOT / "benchmarks" / "bench_train.py"), "--quick", "--csv", "--repeats", "1", "--rss-steps", "1",
               "--peer", "none", "--models", "lenet5")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["net"] for row in rows] == ["lenet5"] and float(rows[0]["convkit img/s"]) > 0
    assert rows[0]["ratio"] == "" and "# threads: 2 for every library" in done.stderr


@pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch")
def test_train_benchmark_check_catches_a_different_network(monkeypatch):
    """The equivalence check fails when the torch twin's weights differ from convkit's by a little."""
    import numpy as np
    import torch

    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_train", bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    copy_weights = bench.copy_weights

    def copy_then_perturb(model, net, flattened):
        copy_weights(model, net, flattened)
        with torch.no_grad():
            list(net.parameters())[-1].add_(1e-2)  # the output layer's bias

    batch, shape = bench.NETS[0].shapes(quick=True)
    model = bench.convkit_model("lenet5", shape)
    ours = bench.Contender("convkit", bench.convkit_step(model), *bench.make_data(batch, shape))
    contenders, diff = bench.checked_torch_contenders("lenet5", model, ours, shape, True)
    assert len(contenders) == 2 and 0 <= diff < 1e-5
    monkeypatch.setattr(bench, "copy_weights", copy_then_perturb)
    with pytest.raises(SystemExit, match="logits differ"):
        bench.checked_torch_contenders("lenet5", model, ours, shape, True)
    assert np.isfinite(ours())
