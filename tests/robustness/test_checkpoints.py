"""Checkpoint loading survives malformed files: every one of a corpus of several thousand (truncations, byte
flips, forged .npy headers and zip layouts, forged architectures, pickle payloads) raises exactly
CheckpointError, and no pickle payload is ever executed."""
from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import convkit
from convkit import saving
from convkit.saving import CheckpointError

from . import checkpoint_corpus


def load_everything(path) -> convkit.Sequential:
    """What resuming a run reads: the model, then the optimizer state into a freshly bound optimizer, and
    the metadata."""
    model = convkit.load_model(path)
    model.compile("sgd", loss="mse")
    saving.load_optimizer_state(path, model.optimizer)
    saving.read_metadata(path)
    return model


@pytest.fixture()
def valid(tmp_path):
    path = tmp_path / "valid.ckpt"
    data = checkpoint_corpus.valid_checkpoint(path)
    return data, [p.value.copy() for p in convkit.load_model(path).parameters()]


@pytest.fixture()
def sentinel(tmp_path):
    path = tmp_path / "pickle-ran"
    yield str(path)
    assert not path.exists(), "a pickle payload was executed"


def test_the_valid_checkpoint_loads_and_the_pickle_payload_is_live(tmp_path, valid, sentinel):
    """Controls: the corpus's base file is fine, and its payload would run if unpickled."""
    load_everything(tmp_path / "valid.ckpt")
    evil = tmp_path / "evil.npy"
    evil.write_bytes(checkpoint_corpus.pickle_payload_npy(str(tmp_path / "control")))
    np.load(evil, allow_pickle=True)
    assert (tmp_path / "control").exists()


def test_every_malformed_file_raises_exactly_checkpoint_error(tmp_path, valid, sentinel):
    data, _ = valid
    path = tmp_path / "malformed.ckpt"
    labels = []
    for label, content in checkpoint_corpus.malformed(data, sentinel):
        path.write_bytes(content)
        try:
            load_everything(path)
        except CheckpointError as error:
            assert type(error) is CheckpointError and str(path) in str(error), label
        except Exception as error:  # noqa: BLE001 - the point: nothing but CheckpointError
            pytest.fail(f"{label}: raised {type(error).__name__}: {error}")
        else:
            pytest.fail(f"{label}: loaded without error")
        labels.append(label)
    assert len(data) > 500 and len(labels) >= len(data) + 80  # every truncation point, then the forgeries


def test_byte_flips_raise_checkpoint_error_or_load_the_same_weights(tmp_path, valid, sentinel):
    data, weights = valid
    path = tmp_path / "flipped.ckpt"
    rejected = 0
    for label, content in checkpoint_corpus.byte_flips(data, step=3):
        path.write_bytes(content)
        try:
            model = load_everything(path)
        except CheckpointError:
            rejected += 1
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"{label}: raised {type(error).__name__}: {error}")
        else:  # the flip hit a field readers ignore (a timestamp, "version made by"): same content
            for p, expected in zip(model.parameters(), weights):
                np.testing.assert_array_equal(p.value, expected, err_msg=label)
    assert rejected >= 200


def test_unknown_layer_class_is_named_and_nothing_is_imported(tmp_path, valid):
    data, _ = valid
    members = checkpoint_corpus.members_of(data)
    text = members["architecture.json"].replace(b'"Dense"', b'"evil_module_xyz.Layer"')
    path = tmp_path / "unknown.ckpt"
    path.write_bytes(checkpoint_corpus.write_zip(checkpoint_corpus.replaced(members, architecture_json=text)))
    with pytest.raises(CheckpointError, match="unknown layer classes 'evil_module_xyz.Layer'.*known: .*Dense"):
        convkit.load_model(path)
    assert "evil_module_xyz" not in __import__("sys").modules


def test_member_count_and_file_size_caps(tmp_path, valid, monkeypatch):
    data, _ = valid
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    monkeypatch.setattr("convkit._checkpoint_file.MAX_MEMBERS", 3)
    with pytest.raises(CheckpointError, match="more than the 3"):
        convkit.load_model(path)
    monkeypatch.setattr("convkit._checkpoint_file.MAX_FILE_BYTES", len(data) - 1)
    with pytest.raises(CheckpointError, match="over the cap"):
        convkit.load_model(path)


def peak_traced_bytes(call) -> int:
    """The most memory Python and NumPy held at once during call() (tracemalloc), beyond what they held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_forged_architecture_fails_on_the_stored_shapes_before_allocating(tmp_path, valid):
    """Declared weights of terabytes (Dense(10**9), Conv2D with 10**6 filters, an extra layer) are compared
    with the stored arrays as the model is built: CheckpointError naming the parameter, with less than 1 MB
    allocated (building first took 8 GB of memory for Dense(10**9))."""
    data, _ = valid
    path = tmp_path / "forged.ckpt"
    forged = list(checkpoint_corpus.forged_sizes(checkpoint_corpus.members_of(data)))
    assert len(forged) == 4
    for label, content in forged:
        path.write_bytes(content)

        def load():
            with pytest.raises(CheckpointError, match=r"the architecture declares parameter '(dense|huge)/kernel' of "
                                                      r"shape \(.*\), (the file stores shape \(3, 2\)|which the file)"):
                convkit.load_model(path)

        assert peak_traced_bytes(load) < 2**20, label


def test_loading_holds_about_the_file_not_the_size_cap(tmp_path, valid):
    """Reading a checkpoint (a few kB) allocates for the file's size, not for the 8 GiB cap (read(cap + 1) did)."""
    assert peak_traced_bytes(lambda: convkit.load_model(tmp_path / "valid.ckpt")) < 2**20


def test_checkpoint_error_is_a_value_error_and_missing_files_stay_os_errors(tmp_path):
    assert issubclass(CheckpointError, ValueError) and convkit.saving.CheckpointError is CheckpointError
    with pytest.raises(FileNotFoundError):
        convkit.load_model(tmp_path / "missing.ckpt")
    assert not os.path.exists(tmp_path / "missing.ckpt")
