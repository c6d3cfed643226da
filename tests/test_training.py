"""TrainingMixin (compile/fit/evaluate/predict/train_on_batch), callbacks, the progress display, Ctrl-C
handling, Monte-Carlo dropout and ensembles, on a small NumPy linear model with the network protocol."""
import csv
import io
import math
import os
import signal

import numpy as np
import pytest

import convkit
from convkit.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from convkit.optim import SGD
from convkit.parameter import Parameter
from convkit.progress import ProgressBar
from convkit.schedules import ReduceLROnPlateau, StepLR
from convkit.training import TrainingMixin


class MSE:
    """Mean squared error over all elements, the loss protocol: (value, gradient with respect to y_pred)."""

    def __call__(self, y_pred, y_true):
        diff = y_pred - y_true
        return float(np.mean(diff ** 2)), 2.0 * diff / diff.size


def mae(y_pred, y_true):
    return float(np.mean(np.abs(y_pred - y_true)))


class Linear(TrainingMixin):
    """y = dropout(x) @ w + b, with the network protocol; dropout (inverted, rate `dropout`) in training only."""

    def __init__(self, n_in, n_out, seed=0, dropout=0.0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.w = Parameter("linear.w", 0.1 * rng.standard_normal((n_in, n_out)).astype(dtype))
        self.b = Parameter("linear.b", np.zeros(n_out, dtype), decay=False)
        self.dropout, self.rng = dropout, np.random.default_rng(seed + 1)
        self.saved = []  # (path, optimizer state) of each save

    def parameters(self):
        return [self.w, self.b]

    def forward(self, x, training):
        if training and self.dropout:
            x = x * (self.rng.random(x.shape) >= self.dropout) / (1 - self.dropout)
        self.x = x
        return x @ self.w.value + self.b.value

    def backward(self, dy):
        self.w.grad += self.x.T @ dy
        self.b.grad += dy.sum(axis=0)
        return dy @ self.w.value.T

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def save(self, path, optimizer=None):
        self.saved.append((path, None if optimizer is None else optimizer.state_dict()))
        with open(path, "w") as f:
            f.write("checkpoint")


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    return x, y


def compiled(lr=0.1, **model_options):
    model = Linear(3, 1, **model_options)
    model.compile(optimizer=SGD(lr=lr, momentum=0.9), loss=MSE(), metrics=[mae])
    return model


class ScriptedLogs(Callback):
    """Overwrites logs[key] with the next scripted value at each epoch end (callbacks after it see it)."""

    def __init__(self, key, values):
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Recorder(Callback):
    def __init__(self):
        self.events, self.batch_losses, self.weights = [], [], []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_train_end(self, logs=None):
        self.events.append("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")
        self.batch_losses.append([])

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch}")
        self.weights.append(self.model.w.value.copy())

    def on_batch_end(self, batch, logs=None):
        self.batch_losses[-1].append(logs["loss"])


# ---- fit, evaluate, predict -----------------------------------------------------------------------------


def test_epochs_replay_from_the_seed_and_augment_sees_seeded_batches():
    """Epoch e's order and its batches' augmentation depend on (seed, epoch) only: a run resumed at
    initial_epoch=2 sees exactly the batches the uninterrupted run saw in its third epoch."""
    x, y = regression_data()

    def recording(log):
        def augment(batch, rng):
            log.append((batch.copy(), rng.random()))
            return batch + 0.0
        return augment

    whole, resumed = [], []
    compiled().fit(x, y, batch_size=8, epochs=3, verbose=0, seed=5, augment=recording(whole))
    compiled().fit(x, y, batch_size=8, epochs=3, verbose=0, seed=5, augment=recording(resumed), initial_epoch=2)
    per_epoch = len(whole) // 3
    assert len(resumed) == per_epoch
    for (xa, ra), (xb, rb) in zip(whole[2 * per_epoch:], resumed):
        assert np.array_equal(xa, xb) and ra == rb
    assert not np.array_equal(whole[0][0], whole[per_epoch][0])  # epochs are shuffled differently
    with pytest.raises(TypeError, match="augment must be a callable"):
        compiled().fit(x, y, augment="flip", verbose=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        compiled().fit(x, y, seed=-1, verbose=0)


def test_fit_reduces_the_loss_and_records_history():
    x, y = regression_data()
    model, recorder = compiled(), Recorder()
    history = model.fit(x, y, batch_size=8, epochs=10, callbacks=[recorder], verbose=0, seed=1)
    assert history.epoch == list(range(10))
    assert set(history.history) == {"loss", "mae", "lr"}
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    assert history.history["lr"] == [0.1] * 10 and not history.interrupted
    # the epoch's loss is the mean of its batch losses (equal batches here)
    assert history.history["loss"] == pytest.approx([np.mean(b) for b in recorder.batch_losses], rel=1e-12)
    assert recorder.events[:2] == ["train_begin", "epoch_begin 0"] and recorder.events[-1] == "train_end"
    assert model.evaluate(x, y)["loss"] < history.history["loss"][-1]


def test_fit_is_reproducible_with_a_seed_and_shuffles():
    x, y = regression_data()
    runs = [compiled().fit(x, y, batch_size=8, epochs=2, verbose=0, seed=s).history["loss"] for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_train_on_batch_reports_the_loss_before_the_step():
    x, y = regression_data(8)
    model = compiled()
    before = model.evaluate(x, y, batch_size=8)["loss"]
    logs = model.train_on_batch(x, y)
    assert logs["loss"] == pytest.approx(before, rel=1e-12)
    assert model.evaluate(x, y, batch_size=8)["loss"] < before


def test_evaluate_weights_batches_by_size():
    x, y = regression_data(10)
    model = compiled()
    pred = x @ model.w.value + model.b.value
    result = model.evaluate(x, y, batch_size=4)  # batches of 4, 4, 2
    assert result["loss"] == pytest.approx(np.mean((pred - y) ** 2), rel=1e-12)
    assert result["mae"] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-12)


def test_validation_split_holds_out_the_last_samples():
    x, y = regression_data(40)
    x[:, 0] = np.arange(40)  # sample ids in column 0
    model = compiled(lr=0.001)
    seen = set()
    forward = model.forward

    def spying_forward(xb, training):
        if training:
            seen.update(xb[:, 0].astype(int))
        return forward(xb, training)

    model.forward = spying_forward
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    assert seen == set(range(30))
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[30:], y[30:])["loss"], rel=1e-12)
    assert "val_mae" in history.history


def test_validation_data_and_string_optimizer():
    x, y = regression_data()
    model = Linear(3, 1)
    model.compile(optimizer="adam", loss=MSE())
    history = model.fit(x, y, epochs=2, validation_data=regression_data(16, seed=1), verbose=0)
    assert isinstance(model.optimizer, convkit.optim.Adam) and len(history.history["val_loss"]) == 2


def test_predict_batches_and_mc_dropout():
    x, _ = regression_data(20)
    model = compiled(dropout=0.5, seed=3)
    deterministic = model.predict(x, batch_size=7)
    np.testing.assert_allclose(deterministic, x @ model.w.value + model.b.value, rtol=1e-14)

    model.rng = np.random.default_rng(42)
    mean, var = model.predict(x, batch_size=7, mc_samples=5)
    assert mean.shape == var.shape == (20, 1) and mean.dtype == var.dtype == np.float64
    model.rng = np.random.default_rng(42)  # replay the same masks: the passes, one by one
    passes = np.stack([np.concatenate([model.forward(x[s:s + 7], True) for s in range(0, 20, 7)]) for _ in range(5)])
    np.testing.assert_allclose(mean, passes.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, passes.var(axis=0), rtol=1e-10, atol=1e-15)
    assert (var > 0).all()
    _, var_one = model.predict(x, mc_samples=1)
    assert not var_one.any()


def test_ensemble_average_and_vote():
    class Fixed:
        def __init__(self, out):
            self.out = np.asarray(out, dtype=np.float64)

        def predict(self, x, batch_size=32):
            return self.out

    a, b, c = Fixed([[0.9, 0.1], [0.2, 0.8]]), Fixed([[0.6, 0.4], [0.7, 0.3]]), Fixed([[0.3, 0.7], [0.1, 0.9]])
    mean, var = convkit.ensemble([a, b, c], None)
    stacked = np.stack([a.out, b.out, c.out])
    np.testing.assert_allclose(mean, stacked.mean(axis=0))
    np.testing.assert_allclose(var, stacked.var(axis=0))
    winner, vote_var = convkit.ensemble([a, b, c], None, mode="vote")
    np.testing.assert_array_equal(winner, [0, 1])
    np.testing.assert_allclose(vote_var, [2 / 3 * 1 / 3] * 2)
    with pytest.raises(ValueError, match="mode must be 'average' or 'vote', got 'max'"):
        convkit.ensemble([a], None, mode="max")


def test_bad_fit_arguments():
    x, y = regression_data(10)
    with pytest.raises(RuntimeError, match="call compile"):
        Linear(3, 1).fit(x, y)
    model = compiled()
    with pytest.raises(ValueError, match="as many samples, got 10 and 9"):
        model.fit(x, y[:9])
    with pytest.raises(ValueError, match="validation_split must be in \\[0, 1\\), got 1.5"):
        model.fit(x, y, validation_split=1.5)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        model.fit(x, y, batch_size=0)
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2, got 3"):
        model.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="mc_samples must be >= 1, got 0"):
        model.predict(x, mc_samples=0)
    with pytest.raises(ValueError, match="initial_epoch must be in \\[0, epochs=2\\), got 2"):
        model.fit(x, y, epochs=2, initial_epoch=2)
    with pytest.raises(ValueError, match="compile needs a loss"):
        Linear(3, 1).compile("sgd")


def test_initial_epoch_resumes_the_epoch_count():
    x, y = regression_data(16)
    recorder = Recorder()
    history = compiled().fit(x, y, epochs=3, initial_epoch=1, verbose=0, callbacks=[recorder])
    assert history.epoch == [1, 2] and recorder.events[1] == "epoch_begin 1"


# ---- callbacks ------------------------------------------------------------------------------------------


def test_model_checkpoint_best_only_saves_through_model_save(tmp_path):
    x, y = regression_data(16)
    model = compiled()
    checkpoint = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.1f}.txt"), save_best_only=True)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[ScriptedLogs("val_loss", [3, 2, 2.5, 1, 1.5]), checkpoint])
    names = ["ckpt-01-3.0.txt", "ckpt-02-2.0.txt", "ckpt-04-1.0.txt"]
    assert [os.path.basename(p) for p, _ in model.saved] == names
    assert sorted(os.listdir(tmp_path)) == names
    assert all(state is not None and "iterations" in state for _, state in model.saved)  # resumable


def test_model_checkpoint_every_epoch_with_max_mode(tmp_path):
    x, y = regression_data(16)
    model = compiled()
    every = ModelCheckpoint(str(tmp_path / "e{epoch}.txt"), save_optimizer=False)
    best = ModelCheckpoint(str(tmp_path / "best.txt"), monitor="val_acc", save_best_only=True)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ScriptedLogs("val_acc", [0.5, 0.4, 0.6]), every, best])
    assert every.saved == [str(tmp_path / f"e{i}.txt") for i in (1, 2, 3)] and best.mode == "max"
    assert len(best.saved) == 2 and model.saved[0][1] is None


def test_early_stopping_stops_at_the_right_epoch_and_restores_best_weights():
    x, y = regression_data(16)
    model, recorder = compiled(), Recorder()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    scripted = ScriptedLogs("val_loss", [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6])
    history = model.fit(x, y, epochs=7, verbose=0, callbacks=[scripted, stopper, recorder])
    # best at epoch 1; epochs 2 and 3 do not improve: stop after epoch 3
    assert history.epoch == [0, 1, 2, 3] and stopper.stopped_epoch == 3 and stopper.best_epoch == 1
    np.testing.assert_array_equal(model.w.value, recorder.weights[1])


def test_early_stopping_min_delta():
    x, y = regression_data(16)
    stopper = EarlyStopping(monitor="loss_x", min_delta=0.1, patience=1)
    history = compiled().fit(x, y, epochs=5, verbose=0,
                             callbacks=[ScriptedLogs("loss_x", [1.0, 0.95, 0.5, 0.45, 0.1]), stopper])
    assert history.epoch == [0, 1]


def test_csv_logger_writes_and_appends(tmp_path):
    x, y = regression_data(16)
    path = tmp_path / "log.csv"
    model = compiled()
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path, append=True)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "lr", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]
    assert float(rows[2][1]) == history.history["loss"][1]


def test_csv_logger_flushes_each_epoch(tmp_path):
    x, y = regression_data(16)
    path = tmp_path / "log.csv"

    class ReadBack(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.lines = open(path).read().splitlines()

    reader = ReadBack()
    compiled().fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path), reader])
    assert len(reader.lines) == 2


def test_terminate_on_nan_stops_after_the_bad_batch():
    x, y = regression_data(32)
    model, recorder = compiled(), Recorder()
    model.compile(optimizer=SGD(lr=0.1), loss=MSE())
    y = y.copy()
    y[20] = np.nan  # the third batch of 8 (no shuffling)
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                        callbacks=[TerminateOnNaN(), recorder])
    assert len(recorder.batch_losses) == 1 and len(recorder.batch_losses[0]) == 3
    assert math.isnan(recorder.batch_losses[0][-1]) and history.epoch == [0]


def test_learning_rate_scheduler_with_schedules_and_functions():
    x, y = regression_data(16)
    history = compiled().fit(x, y, epochs=5, verbose=0,
                             callbacks=[LearningRateScheduler(StepLR(step_size=2, gamma=0.5))])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    history = compiled().fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr * 0.1)])
    assert history.history["lr"] == pytest.approx([0.01, 0.001, 0.0001])


def test_learning_rate_scheduler_with_plateau():
    x, y = regression_data(16)
    plateau = ReduceLROnPlateau(monitor="val_loss", patience=0)
    history = compiled().fit(x, y, epochs=4, verbose=0, callbacks=[
        ScriptedLogs("val_loss", [1.0, 2.0, 0.5, 0.6]), LearningRateScheduler(plateau)])
    # the lr logged for an epoch is the one it ran with; the plateau after epoch 1 cuts epoch 2's lr
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01])


# ---- progress display -----------------------------------------------------------------------------------


def test_progress_lines_in_logs(capsys):
    x, y = regression_data(32)
    compiled().fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=1)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and "\r" not in err  # not a terminal: one plain line per epoch in a short run
    assert lines[0].startswith("epoch 1/2  3/3 [====================]  loss ")
    assert "mae " in lines[1] and "val_loss " in lines[1] and "samples/s" in lines[1]


def test_verbose_zero_and_two(capsys):
    x, y = regression_data(32)
    compiled().fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert capsys.readouterr().err == ""
    compiled().fit(x, y, batch_size=8, epochs=3, verbose=2)
    assert len(capsys.readouterr().err.splitlines()) == 3


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_redraws_one_line():
    clock, stream = FakeClock(), FakeTerminal()
    bar = ProgressBar(0, 1, 4, stream=stream, clock=clock)
    for done in range(1, 5):
        clock.now += 1.0
        bar.update(done, 10 * done, {"loss": 1.0 / done})  # the last update draws nothing: finish does
    bar.finish({"loss": 0.25})
    out = stream.getvalue()
    assert out.count("\r") == 4 and out.count("\n") == 1 and out.endswith("\n")
    assert "\repoch 1/1  1/4 [=====>..............]  loss 1  10 samples/s  ETA 0:03" in out
    assert out.rsplit("\r", 1)[1] == "epoch 1/1  4/4 [====================]  loss 0.25  10 samples/s  0:04\n"


def test_progress_bar_in_a_log_prints_periodic_lines():
    clock, stream = FakeClock(), io.StringIO()
    bar = ProgressBar(1, 3, 100, stream=stream, interval=30.0, clock=clock)
    for done in range(1, 100):
        clock.now += 1.0
        bar.update(done, done, {})
    bar.finish({})
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[1].split(" ")[0] for line in lines] == ["30/100", "60/100", "90/100", "100/100"]
    assert lines[0].endswith("ETA 1:10")


# ---- Ctrl-C ---------------------------------------------------------------------------------------------


class CtrlC(Callback):
    """Sends SIGINT to this process `signals` times at the end of one batch of one epoch."""

    def __init__(self, epoch, batch, signals=1):
        self.epoch, self.batch, self.signals, self.current = epoch, batch, signals, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            for _ in range(self.signals):
                os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_after_the_current_batch(capsys):
    x, y = regression_data(48)
    model, recorder = compiled(), Recorder()
    handler = signal.getsignal(signal.SIGINT)
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=1, callbacks=[CtrlC(1, 2), recorder])
    assert history.interrupted and history.interrupted_at == (1, 3)
    assert history.epoch == [0]  # the cut epoch is not recorded
    assert [len(b) for b in recorder.batch_losses] == [6, 3]
    assert recorder.events[-2:] == ["epoch_begin 1", "train_end"]
    assert signal.getsignal(signal.SIGINT) is handler
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert last_line.startswith("epoch 2/4  3/6 [") and last_line.endswith("interrupted")


def test_second_ctrl_c_raises_at_once_after_on_train_end():
    x, y = regression_data(48)
    recorder = Recorder()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        compiled().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[CtrlC(0, 1, signals=2), recorder])
    assert recorder.events[-1] == "train_end" and len(recorder.batch_losses[0]) == 1
    assert signal.getsignal(signal.SIGINT) is handler


def test_ctrl_c_during_validation_keeps_the_finished_epoch():
    class CtrlCAtEpochEnd(Callback):
        def on_epoch_end(self, epoch, logs=None):
            os.kill(os.getpid(), signal.SIGINT)

    x, y = regression_data(48)
    history = compiled().fit(x, y, batch_size=8, epochs=3, verbose=0, validation_split=0.25,
                             callbacks=[CtrlCAtEpochEnd()])
    assert history.interrupted and history.interrupted_at == (0, 5) and history.epoch == [0]
    assert len(history.history["val_loss"]) == 1
