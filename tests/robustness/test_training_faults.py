"""Training faults: anomaly detection names the first layer (or the loss, or the optimizer step) producing a
NaN or an infinity; NaN-injected data or lr=1e10 stop training within one step; the last good checkpoint
(ModelCheckpoint, RunCheckpoint) stays intact and loadable."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import convkit
from convkit import anomaly, initializers
from convkit.anomaly import AnomalyError
from convkit.callbacks import Callback, ModelCheckpoint, RunCheckpoint, TerminateOnNaN
from convkit.layers import Conv2D, Dense, Flatten, Layer, MaxPooling2D


@pytest.fixture(autouse=True)
def anomaly_mode_off_and_seeded():
    initializers.set_seed(0)
    yield
    anomaly.set_anomaly_detection(False)


class NaNGradient(Layer):
    """Identity forward; backward returns NaN where dy is positive (a broken backward to be found)."""

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return np.where(dy > 0, np.nan, dy)


class StepCounter(Callback):
    def __init__(self):
        self.batches = 0

    def on_batch_end(self, batch, logs=None):
        self.batches += 1


def small_cnn():
    model = convkit.Sequential([Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1), name="conv"),
                                MaxPooling2D(2, name="pool"), Flatten(name="flat"), Dense(3, name="dense")])
    model.compile(convkit.optim.SGD(lr=0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_forward_names_the_first_layer_producing_a_non_finite_value():
    model = convkit.Sequential([Dense(4, input_shape=(3,), name="first"), Dense(4, name="broken"),
                                Dense(2, name="after")])
    x = np.ones((2, 3), np.float32)
    model.get_layer("broken").kernel.value[0, 0] = np.inf
    assert not np.isfinite(model(x)).all()  # off by default: NaN and Inf just propagate
    with convkit.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"layer 'broken' \(Dense\) produced non-finite values in forward"):
            model(x)
    assert not anomaly.is_anomaly_detection_enabled()


def test_non_finite_data_is_blamed_on_the_data_at_the_first_layer():
    model = convkit.Sequential([Dense(4, input_shape=(3,), name="first"), Dense(2, name="second")])
    x = np.ones((2, 3), np.float32)
    x[1, 2] = np.nan
    convkit.set_anomaly_detection(True)
    with pytest.raises(AnomalyError, match=r"layer 'first' \(Dense\) received non-finite input .*1 NaN.*the data"):
        model(x)


def test_backward_names_the_layer_producing_a_non_finite_gradient():
    model = convkit.Sequential([Dense(4, input_shape=(3,), name="first"), NaNGradient(name="broken_grad"),
                                Dense(2, name="last")])
    convkit.set_anomaly_detection(True)
    model.forward(np.ones((2, 3), np.float32), training=True)
    with pytest.raises(AnomalyError, match=r"'broken_grad' \(NaNGradient\) produced a non-finite input gradient"):
        model.backward(np.ones((2, 2), np.float32))
    model.forward(np.ones((2, 3), np.float32), training=True)
    with pytest.raises(AnomalyError, match=r"'last' \(Dense\) received a non-finite output gradient"):
        model.backward(np.full((2, 2), np.inf, np.float32))


def test_set_anomaly_detection_validates_its_argument():
    with pytest.raises(TypeError, match="enabled.*'yes'"):
        convkit.set_anomaly_detection("yes")
    with pytest.raises(TypeError, match="detect_anomaly"):
        small_cnn().fit(*data(), detect_anomaly=1, verbose=0)


def test_nan_injected_data_stops_training_within_its_step_and_keeps_the_checkpoint(tmp_path):
    model = small_cnn()
    x, y = data()
    path = tmp_path / "best.ckpt"
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[ModelCheckpoint(path)], verbose=0, seed=0)
    saved, weights = sha256(path), [p.value.copy() for p in model.parameters()]
    x_bad = x.copy()
    x_bad[13, 2, 2, 0] = np.nan  # in the second batch (no shuffling)
    counter = StepCounter()
    with pytest.raises(AnomalyError, match=r"layer 'conv' \(Conv2D\) received non-finite input"):
        model.fit(x_bad, y, batch_size=8, epochs=3, shuffle=False, callbacks=[counter, ModelCheckpoint(path)],
                  verbose=0, detect_anomaly=True)
    assert counter.batches == 1  # the first batch trained, the second raised before its step
    assert not anomaly.is_anomaly_detection_enabled()  # fit restores the setting
    assert sha256(path) == saved
    loaded = convkit.load_model(path)
    for p, before in zip(loaded.parameters(), weights):
        np.testing.assert_array_equal(p.value, before)


@pytest.mark.parametrize("checkpoint", ["model", "run"])
def test_lr_1e10_with_terminate_on_nan_keeps_the_last_good_checkpoint(tmp_path, checkpoint):
    model = small_cnn()
    x, y = data(64)
    path = tmp_path / "last.ckpt"

    def make_callback():
        return ModelCheckpoint(path) if checkpoint == "model" else RunCheckpoint(path, run_args={})

    model.fit(x, y, batch_size=8, epochs=1, callbacks=[make_callback()], verbose=0, seed=0)
    saved = sha256(path)
    model.optimizer.lr = 1e10
    counter = StepCounter()
    history = model.fit(x, y, batch_size=8, epochs=3, callbacks=[TerminateOnNaN(), counter, make_callback()],
                        verbose=0, seed=1)
    assert model.stop_training and counter.batches < 8  # stopped inside the first epoch at lr=1e10
    assert not all(np.isfinite(p.value).all() for p in model.parameters())
    assert history.epoch == [0]  # the epoch ran its on_epoch_end, where the checkpoint declined to save
    assert sha256(path) == saved
    assert all(np.isfinite(p.value).all() for p in convkit.load_model(path).parameters())


def test_lr_1e10_with_anomaly_detection_stops_at_the_first_non_finite_step(tmp_path):
    model = small_cnn()
    x, y = data(64)
    path = tmp_path / "last.ckpt"
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[ModelCheckpoint(path)], verbose=0, seed=0)
    saved = sha256(path)
    model.optimizer.lr = 1e10
    finite_after = []

    class RecordFinite(Callback):
        def on_batch_end(self, batch, logs=None):
            finite_after.append(all(np.isfinite(p.value).all() for p in self.model.parameters()))

    with pytest.raises(AnomalyError, match="anomaly detection: .*non-finite"):
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[RecordFinite(), ModelCheckpoint(path)], verbose=0, seed=1,
                  detect_anomaly=True)
    assert all(finite_after) and len(finite_after) < 8  # every completed step was finite; it raised in the epoch
    assert sha256(path) == saved
    convkit.load_model(path)
