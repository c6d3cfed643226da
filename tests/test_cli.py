"""The `convkit` command end to end (subprocesses, as a user runs it), and README's set-up commands."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convkit import cli

ROOT = Path(__file__).resolve().parents[1]


def run_convkit(*args, cwd, timeout=900, check=True):
    result = subprocess.run([sys.executable, "-m", "convkit", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"convkit {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def test_default_training_job_reaches_97_percent(tmp_path):
    """`convkit train` with no arguments: the README's main job."""
    result = run_convkit("train", cwd=tmp_path)
    run = tmp_path / "runs" / "lenet5_modern-digits"
    outcome = json.loads((run / "result.json").read_text())
    assert outcome["test_accuracy"] >= 0.97, result.stdout
    assert re.search(r"test accuracy: 9[7-9]\.\d\d%", result.stdout)
    assert "Total params" in result.stdout and "epoch 30/30" in result.stdout + result.stderr
    for name in ("last.ckpt", "best.ckpt", "history.csv"):
        assert (run / name).stat().st_size > 0
    assert (run / "curves.png").exists() or (run / "curves.txt").exists()
    assert len((run / "history.csv").read_text().splitlines()) == 31  # header + one row per epoch

    # A second run never overwrites the first one's files.
    run_convkit("train", "--epochs", "1", "--quiet", cwd=tmp_path)
    assert (tmp_path / "runs" / "lenet5_modern-digits-2" / "last.ckpt").exists()
    assert json.loads((run / "result.json").read_text()) == outcome

    # Nor does an explicit --out that points at an earlier run.
    refused = run_convkit("train", "--epochs", "1", "--out", str(run), cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "already holds a run" in refused.stderr and "--resume" in refused.stderr
    assert json.loads((run / "result.json").read_text()) == outcome

    evaluated = run_convkit("evaluate", str(run / "best.ckpt"), cwd=tmp_path)
    assert re.search(r"test accuracy \d+\.\d\d%", evaluated.stdout) and "per class" in evaluated.stdout


def test_ctrl_c_then_resume_is_bit_identical(tmp_path):
    common = ("--epochs", "8")
    run_convkit("train", "--quiet", *common, "--out", "whole", cwd=tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "convkit", "train", "--quiet", *common, "--out", "cut"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoint = tmp_path / "cut" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived (machine too fast for this check)")
    assert process.returncode == 130, output
    assert "convkit train --resume" in output
    run_convkit("train", "--quiet", "--resume", str(checkpoint), *common, cwd=tmp_path)
    whole, cut = np.load(tmp_path / "whole" / "last.ckpt"), np.load(checkpoint)
    weights = [k for k in whole.files if k.startswith("weights/")]
    assert weights and all(np.array_equal(whole[k], cut[k]) for k in weights)


def test_summary_and_list(tmp_path):
    out = run_convkit("summary", "resnet50", "--input-shape", "224,224,3", "--classes", "1000", cwd=tmp_path).stdout
    assert "Trainable params: 25,557,032" in out
    out = run_convkit("summary", cwd=tmp_path).stdout
    assert "Total params: 61,706" in out
    assert "mobilenet" in run_convkit("summary", "--list", cwd=tmp_path).stdout.split()


def test_bench_runs_from_a_checkout(tmp_path):
    out = run_convkit("bench", "--quick", "--only", "bench_gemm.py", "--from", str(ROOT / "benchmarks"),
                      cwd=tmp_path).stdout
    assert "== bench_gemm.py" in out
    missing = run_convkit("bench", "--from", str(tmp_path), cwd=tmp_path, check=False)
    assert missing.returncode != 0 and "is not convkit's benchmarks/ folder" in missing.stderr


@pytest.mark.parametrize("args, message", [
    (("train", "--model", "resnet51"), "unknown model 'resnet51'"),
    (("train", "--data", "imagenet"), "--data must start with one of"),
    (("train", "--data", "mnist"), "--data mnist needs one directory"),
    (("train", "--data", "mnist", "/no/such/dir"), "is not a directory"),
    (("train", "--epochs", "0"), "--epochs must be >= 1"),
    (("summary", "lenet5_modern", "--input-shape", "28,x"), "expected a shape"),
    (("train", "--model-option", "not an option"), "expected KEY=VALUE"),
])
def test_bad_arguments_give_clear_errors(tmp_path, args, message):
    result = run_convkit(*args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


def test_fresh_run_dir_never_reuses_a_run(tmp_path):
    base = tmp_path / "runs" / "m-d"
    assert cli._fresh_run_dir(base) == base
    base.mkdir(parents=True)
    assert cli._fresh_run_dir(base) == base  # empty: free to use
    (base / "last.ckpt").write_bytes(b"x")
    assert cli._fresh_run_dir(base) == base.with_name("m-d-2")


def test_text_curves_without_matplotlib(tmp_path, monkeypatch):
    from convkit import plotting

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    path = plotting.write_training_curves({"loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9]}, tmp_path)
    assert path.name == "curves.txt"
    text = path.read_text()
    assert "loss" in text and "val_loss" in text and text.count("|") == 6


def test_readme_setup_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in setup.split("```bash", 1)[1].split("```", 1)[0].splitlines()
                if line and not line.startswith("#")]
    assert commands == ['pip install ".[demo]" && convkit train', 'pip install ".[test]" && pytest']
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [commands[1]]
