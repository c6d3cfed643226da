"""save / load_model / save_weights / load_weights: identical predictions, optimizer state, atomicity, no pickle,
clear errors on corrupt files."""
import json
import os
import zipfile

import numpy as np
import pytest

import convkit
from convkit import Input, Model, Sequential, initializers
from convkit.layers import Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling, MaxPooling2D


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Weights do not depend on which tests ran before."""
    initializers.set_seed(0)


class FakeOptimizer:
    """The optimizer interface saving relies on: a flat state_dict of arrays and numbers."""

    def __init__(self, step=0, lr=0.1):
        self.state = {"step": step, "lr": lr, "velocity/dense_1/kernel": np.arange(6.0).reshape(2, 3)}

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


def trained_graph():
    x = Input((6, 6, 3))
    y = BatchNormalization()(Conv2D(4, 3, padding="same", activation="relu")(x))
    y = Add()([y, Conv2D(4, 1)(x)])
    model = Model(x, Dense(3)(GlobalAveragePooling()(y)))
    data = np.random.default_rng(0).standard_normal((4, 6, 6, 3)).astype(np.float32)
    model.forward(data, training=True)  # moves the BatchNorm statistics away from their initial values
    return model, data


def test_graph_save_load_gives_identical_predictions(tmp_path):
    model, data = trained_graph()
    path = tmp_path / "model.ckpt"
    model.save(path)
    loaded = convkit.load_model(path)
    assert isinstance(loaded, Model)
    assert [p.name for p in loaded.parameters()] == [p.name for p in model.parameters()]
    np.testing.assert_array_equal(loaded(data), model(data))
    bn = [layer for layer in loaded.layers if isinstance(layer, BatchNormalization)][0]
    assert bn.moving_mean.value.any()


def test_sequential_save_load_with_optimizer_state(tmp_path):
    model = Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), MaxPooling2D(2), Flatten(), Dense(3)])
    data = np.random.default_rng(1).standard_normal((2, 8, 8, 1)).astype(np.float32)
    path = str(tmp_path / "seq.ckpt")
    model.save(path, optimizer=FakeOptimizer(step=7, lr=0.05))
    restored = FakeOptimizer()
    loaded = convkit.load_model(path, optimizer=restored)
    np.testing.assert_array_equal(loaded(data), model(data))
    assert restored.state["step"] == 7 and isinstance(restored.state["step"], int)
    assert restored.state["lr"] == 0.05
    np.testing.assert_array_equal(restored.state["velocity/dense_1/kernel"], np.arange(6.0).reshape(2, 3))


def test_file_is_an_uncompressed_zip_readable_without_pickle(tmp_path):
    model, _ = trained_graph()
    path = tmp_path / "model.ckpt"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        assert "architecture.json" in archive.namelist()
        architecture = json.loads(archive.read("architecture.json"))
    assert architecture["network"]["class_name"] == "Model"
    with np.load(path, allow_pickle=False) as archive:
        for p in model.parameters():
            np.testing.assert_array_equal(archive[f"weights/{p.name}"], p.value)
    assert [f for f in os.listdir(tmp_path) if f != "model.ckpt"] == []  # no temporary file left behind


def test_save_weights_load_weights_into_a_new_instance(tmp_path):
    model, data = trained_graph()
    path = tmp_path / "weights.ckpt"
    model.save_weights(path)
    other, _ = trained_graph()  # same architecture, other layer names and weights
    assert not np.array_equal(other(data), model(data))
    other.load_weights(path)
    np.testing.assert_array_equal(other(data), model(data))
    with pytest.raises(ValueError, match="weights only"):
        convkit.load_model(path)
    with pytest.raises(ValueError, match="holds 2 weight arrays, the model has"):
        small = Sequential([Dense(2)], input_shape=(3,))
        small.save_weights(tmp_path / "small.ckpt")
        model.load_weights(tmp_path / "small.ckpt")


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    model, _ = trained_graph()
    path = tmp_path / "model.ckpt"
    model.save(path)
    before = path.read_bytes()

    class BrokenOptimizer:
        def state_dict(self):
            return {"bad": object()}

    with pytest.raises(TypeError, match="state_dict"):
        model.save(path, optimizer=BrokenOptimizer())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.ckpt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad_json"])
def test_corrupt_files_raise_naming_the_path(tmp_path, damage):
    model, _ = trained_graph()
    path = tmp_path / "model.ckpt"
    model.save(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip at all")
    else:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("architecture.json", "{not json")  # a second member of that name: the last wins
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        convkit.load_model(path)


def test_metadata_and_optimizer_state_round_trip(tmp_path):
    model, data = trained_graph()
    path = tmp_path / "run.ckpt"
    model.save(path, optimizer=FakeOptimizer(step=7), metadata={"training": {"epoch": 3, "history": [1.5, 0.5]}})
    assert convkit.saving.read_metadata(path) == {"training": {"epoch": 3, "history": [1.5, 0.5]}}
    restored = FakeOptimizer()
    convkit.saving.load_optimizer_state(path, restored)
    assert restored.state["step"] == 7 and np.array_equal(restored.state["velocity/dense_1/kernel"],
                                                          np.arange(6.0).reshape(2, 3))
    model.save(tmp_path / "bare.ckpt")
    assert convkit.saving.read_metadata(tmp_path / "bare.ckpt") == {}
    with pytest.raises(ValueError, match="holds no optimizer state"):
        convkit.saving.load_optimizer_state(tmp_path / "bare.ckpt", FakeOptimizer())
    with pytest.raises(TypeError, match="metadata must be JSON-ready"):
        model.save(tmp_path / "bad.ckpt", metadata={"when": object()})
    assert not (tmp_path / "bad.ckpt").exists()


def test_run_checkpoint_saves_everything_needed_to_resume(tmp_path):
    from convkit import callbacks, optim, schedules

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, 32)
    model = Sequential([Flatten(), Dense(3)], input_shape=(4, 4, 1))
    model.compile(optim.SGD(lr=0.1), loss="softmax_cross_entropy")
    schedule = schedules.StepLR(step_size=1, gamma=0.5)
    saver = callbacks.RunCheckpoint(tmp_path / "last.ckpt", {"model": "tiny"}, schedule=schedule)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0,
              callbacks=[callbacks.LearningRateScheduler(schedule), saver])
    state = convkit.saving.read_metadata(tmp_path / "last.ckpt")["training"]
    assert state["epoch"] == 2 and saver.epochs_done == 2 and state["args"] == {"model": "tiny"}
    assert len(state["history"]["loss"]) == 2 and state["random"] == convkit.random.get_state()
    assert state["schedule"]["epoch"] == schedule.state_dict()["epoch"]
    reloaded = convkit.load_model(tmp_path / "last.ckpt")
    assert np.array_equal(reloaded.predict(x), model.predict(x))
