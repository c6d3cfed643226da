"""Every script in examples/ runs end to end with tiny settings (a subprocess each), so none can rot unnoticed.

The checks are on what each example claims to show: its accuracy line, the frozen weights bit-identical,
the depthwise-separable savings against arithmetic written out here, the PNG written, and so on.
"""
import gzip
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_digits = pytest.mark.skipif(not HAS_SKLEARN, reason="the digits come with scikit-learn")


def run_example(script: str, *args: str, cwd: Path, expect_rc: int = 0) -> str:
    """Runs examples/<script> in cwd; returns stdout (plus stderr when a failure is expected)."""
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert done.returncode == expect_rc, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + (done.stderr if expect_rc else "")


def accuracy(out: str, prefix: str = "test accuracy") -> float:
    """The first percentage on the line starting with `prefix`."""
    match = re.search(rf"^{re.escape(prefix)}.*?(\d+\.\d+)%", out, re.MULTILINE)
    assert match, f"no '{prefix}' line in:\n{out}"
    return float(match.group(1))


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """An IDX file (big-endian header: 0, 0, type 0x08 = uint8, rank; then each dimension as uint32)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def fake_mnist(root: Path, train: int = 64, test: int = 32) -> Path:
    """Random MNIST-format files: the training set gzipped, the test set raw (the loader reads both)."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for prefix, count, compress in (("train", train, True), ("t10k", test, False)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)), compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count), compress)
    return root


def fake_cifar10(root: Path, per_batch: int = 4) -> Path:
    """Random CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.concatenate([rng.integers(0, 10, (per_batch, 1)), rng.integers(0, 256, (per_batch, 3072))], 1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    return root


def test_lenet5_mnist_on_idx_files(tmp_path):
    out = run_example("lenet5_mnist.py", "--data", str(fake_mnist(tmp_path / "mnist")), "--epochs", "1",
                      cwd=tmp_path)
    assert "data: 64 training and 32 test images of shape (28, 28, 1)" in out
    assert "Total params: 61,706" in out  # the course's modernised LeNet-5
    assert 0 <= accuracy(out) <= 100


def test_lenet5_mnist_says_how_to_get_the_data(tmp_path):
    out = run_example("lenet5_mnist.py", cwd=tmp_path, expect_rc=2)
    assert "--data DIR" in out and "--download" in out and "t10k-images-idx3-ubyte" in out
    out = run_example("lenet5_mnist.py", "--data", str(tmp_path), cwd=tmp_path, expect_rc=2)
    assert "train-images-idx3-ubyte" in out and "not found" in out and "Traceback" not in out


def test_resnet18_cifar10_with_augmentation(tmp_path):
    args = ("--data", str(fake_cifar10(tmp_path / "cifar")), "--train-size", "8", "--test-size", "4",
            "--batch-size", "8")
    out = run_example("resnet18_cifar10.py", *args, cwd=tmp_path)
    assert "data: 8 training and 4 test images of shape (32, 32, 3)" in out
    assert "resnet18_cifar: 11,173,962 trainable parameters" in out
    assert "with flip + crop (pad 4) augmentation" in out
    assert 0 <= accuracy(out) <= 100


def mobilenet_savings(alpha: float, size: int) -> tuple:
    """(standard params, separable params, standard FLOPs, separable FLOPs) of MobileNet v1's 13 blocks,
    from the paper's Table 1: 3x3 convolutions, a multiply-add counted as 2 FLOPs, no biases."""
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c_in, side = int(32 * alpha), (size + 1) // 2  # after the stride-2 stem
    totals = np.zeros(4, dtype=np.int64)
    for filters, stride in blocks:
        c_out, side = int(filters * alpha), (side - 1) // stride + 1
        pixels = side * side
        totals += [9 * c_in * c_out, 9 * c_in + c_in * c_out,
                   2 * pixels * 9 * c_in * c_out, 2 * pixels * (9 * c_in + c_in * c_out)]
        c_in = c_out
    return tuple(int(v) for v in totals)


@needs_digits
def test_mobilenet_depthwise_savings_and_training(tmp_path):
    out = run_example("mobilenet_depthwise.py", "--epochs", "1", "--train-size", "64", cwd=tmp_path)
    p_std, p_sep, f_std, f_sep = mobilenet_savings(0.25, 32)
    assert (p_std, p_sep, f_std, f_sep) == (1766016, 207384, 12386304, 1553664)  # the arithmetic, by hand once
    assert (f"all 13 blocks: {p_std:,} -> {p_sep:,} parameters ({p_std / p_sep:.1f}x fewer), "
            f"{f_std:,} -> {f_sep:,} FLOPs ({f_std / f_sep:.1f}x fewer)") in out
    assert "mobilenet_0.25" in out  # the summary was printed
    assert 0 <= accuracy(out) <= 100


@needs_digits
def test_mobilenet_depthwise_paper_configuration_without_training(tmp_path):
    out = run_example("mobilenet_depthwise.py", "--alpha", "1.0", "--image-size", "224", "--epochs", "0",
                      cwd=tmp_path)
    p_std, p_sep, f_std, f_sep = mobilenet_savings(1.0, 224)
    assert f"all 13 blocks: {p_std:,} -> {p_sep:,} parameters" in out and f"{f_std:,} -> {f_sep:,} FLOPs" in out
    assert "test accuracy" not in out


@needs_digits
def test_transfer_learning_keeps_the_frozen_backbone_bit_identical(tmp_path):
    out = run_example("transfer_learning.py", "--epochs", "1", "--head-train-size", "50", cwd=tmp_path)
    assert "trainable after freezing: ['head_b/kernel', 'head_b/bias'] (325 of" in out
    assert "(50 training images)" in out
    assert "frozen backbone weights bit-identical after training: True" in out
    assert accuracy(out, "pretraining on digits 0-4") > 50  # one epoch on ~720 images already learns


@needs_digits
def test_mc_dropout_noise_is_more_uncertain_than_digits(tmp_path):
    out = run_example("mc_dropout_uncertainty.py", "--epochs", "3", "--mc-samples", "8", "--noise-images", "50",
                      cwd=tmp_path)
    assert "Monte-Carlo dropout, 8 passes" in out
    rows = {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(test digits, right|uniform noise images)\s+\d+\s+(\d+\.\d+)", out, re.MULTILINE)}
    assert rows["uniform noise images"] > rows["test digits, right"]  # entropy
    assert "noise images are more uncertain than correctly classified digits: True" in out
    assert accuracy(out, "MC-dropout accuracy") > 80


@needs_digits
def test_ensemble_vote(tmp_path):
    out = run_example("ensemble_vote.py", "--epochs", "1", "--train-size", "300", cwd=tmp_path)
    members = [accuracy(out, f"model {k}") for k in (1, 2, 3)]
    assert all(0 <= a <= 100 for a in members)
    assert 0 <= accuracy(out, "ensemble, average") <= 100 and 0 <= accuracy(out, "ensemble, majority vote") <= 100
    assert re.search(r"members disagree on \d+ of 359 test images", out)


@needs_digits
def test_custom_plugin_layer(tmp_path):
    out = run_example("custom_plugin_layer.py", "--epochs", "1", "--train-size", "64", cwd=tmp_path)
    assert "gradient check passed: 304 elements" in out  # x (3*5*5*4 = 300) and beta (4), every element
    assert "saved and loaded back by name: predictions identical: True" in out
    assert 0 <= accuracy(out) <= 100


def test_conv3d_volumes(tmp_path):
    out = run_example("conv3d_volumes.py", "--size", "8", "--volumes", "16", "--epochs", "1", cwd=tmp_path)
    assert "data: 16 training and 4 test volumes of shape (8, 8, 8, 1)" in out
    assert 0 <= accuracy(out) <= 100


def test_conv1d_sequences(tmp_path):
    out = run_example("conv1d_sequences.py", "--length", "32", "--sequences", "64", "--epochs", "1", cwd=tmp_path)
    assert "data: 64 training and 16 test sequences of shape (32, 1)" in out
    assert 0 <= accuracy(out) <= 100


@needs_digits
def test_feature_maps_png(tmp_path):
    out = run_example("feature_maps.py", "--epochs", "1", "--train-size", "64", "--out", "maps.png", cwd=tmp_path)
    if not HAS_MATPLOTLIB:
        assert "matplotlib is not installed" in out and not (tmp_path / "maps.png").exists()
        return
    assert "kernels (3, 3, 1, 6), feature maps (8, 8, 6)" in out and "wrote maps.png" in out
    assert (tmp_path / "maps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_digits
@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="the PNG needs matplotlib")
def test_feature_maps_from_a_checkpoint(tmp_path):
    """The layout `convkit train` saves (the modernised LeNet-5 for 8x8 digits) is shown without training."""
    from convkit import models

    models.lenet5_modern(input_shape=(8, 8, 1), classes=10).save(tmp_path / "lenet.ckpt")
    out = run_example("feature_maps.py", "--checkpoint", "lenet.ckpt", "--index", "5", "--out", "maps.png",
                      cwd=tmp_path)
    assert "epoch" not in out and "wrote maps.png" in out
    assert "kernels (3, 3, 1, 6), feature maps (8, 8, 6)" in out
    assert (tmp_path / "maps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
