"""The example plugin package (examples/plugin_layer): pip-installed into this interpreter, found by name
through the convkit.layers entry point, and its gradients checked inside a model; uninstalled afterwards."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convkit

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin_layer"
DISTRIBUTION = "convkit-scaled-tanh"

# Run in a fresh interpreter: entry points and imports are then read after the install.
SCRIPT = textwrap.dedent("""
    import numpy as np, convkit
    from convkit.layers import Conv2D, Dense, Flatten
    from convkit.registry import get_layer_class
    from convkit.testing import check_gradients

    ScaledTanh = get_layer_class("ScaledTanh")
    assert ScaledTanh.__module__ == "convkit_scaled_tanh", ScaledTanh
    model = convkit.Sequential([Conv2D(3, 3, input_shape=(5, 5, 2)), ScaledTanh(), Flatten(), Dense(2)])
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2))
    report = check_gradients(model, x, max_checks=20)
    assert any(e.name.endswith("/a") for e in report.entries) and any(e.name.endswith("/b") for e in report.entries)
    model.save({path!r})
    loaded = convkit.load_model({path!r})
    assert type(loaded.layers[1]).__name__ == "ScaledTanh"
    np.testing.assert_array_equal(loaded(x), model(x))
    print("plugin ok", report.worst)
""")


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


@pytest.fixture
def installed_plugin():
    result = pip("install", "--no-deps", "--no-build-isolation", "--quiet", str(PLUGIN))
    if result.returncode != 0:  # e.g. no `wheel` in this environment: let pip fetch the build backend
        result = pip("install", "--no-deps", "--quiet", str(PLUGIN))
    if result.returncode != 0:
        pytest.skip(f"pip cannot install the example plugin here: {result.stderr.strip()[-500:]}")
    try:
        yield
    finally:
        pip("uninstall", "--yes", "--quiet", DISTRIBUTION)


def test_plugin_layer_is_found_by_name_and_its_gradients_check_out(installed_plugin, tmp_path):
    # The convkit under test: the installed package, or the in-place build of a source checkout.
    package_parent = str(Path(convkit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    script = SCRIPT.format(path=str(tmp_path / "with_plugin.ckpt"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "plugin ok" in result.stdout
