"""backward(dy, input_gradient=False): a training step's backward without the input's gradient. The
parameter gradients must be exactly those of the full backward, and the first convolution must not compute
dx (it costs as much as its weights' gradient when the input has few channels)."""
import numpy as np
import pytest

from convkit import Input, Model, Sequential, _C
from convkit.layers import Activation, Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling, MaxPooling2D


def lenet_like() -> Sequential:
    return Sequential([Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(2),
                       Conv2D(6, 3, activation="relu"), Flatten(), Dense(3)])


def residual_model() -> Model:
    """The input feeds a convolution and, through the shortcut, an Add: only the convolution may skip dx."""
    x = Input((6, 6, 2))
    y = BatchNormalization()(Conv2D(2, 3, padding="same", use_bias=False)(x))
    y = Activation("relu")(Add()([x, y]))
    return Model(x, Dense(3)(GlobalAveragePooling()(Conv2D(3, 1)(y))))


def counting_backward_data(monkeypatch) -> list:
    calls = []
    original = _C.conv_backward_data

    def counted(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(_C, "conv_backward_data", counted)
    return calls


def gradients(model, x, dy, **options):
    model.zero_grad()
    model.forward(x, training=True)
    dx = model.backward(dy, **options)
    return dx, [p.grad.copy() for p in model.trainable_parameters()]


@pytest.mark.parametrize("build, convolutions", [(lenet_like, 2), (residual_model, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameter_gradients_equal_and_first_dx_skipped(build, convolutions, dtype, monkeypatch):
    model = build()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, *_input_shape(model))).astype(dtype)
    dy = rng.standard_normal(model.forward(x).shape).astype(dtype)
    calls = counting_backward_data(monkeypatch)
    dx, full = gradients(model, x, dy)
    assert dx.shape == x.shape and len(calls) == convolutions
    calls.clear()
    none, skipped = gradients(model, x, dy, input_gradient=False)
    assert none is None and len(calls) == convolutions - 1
    assert all(np.array_equal(a, b) for a, b in zip(full, skipped))
    assert any(np.any(g != 0) for g in skipped)


def _input_shape(model) -> tuple:
    return model._input_shape() if isinstance(model, Sequential) else model.inputs[0].shape


def test_first_layer_frozen_without_bias_needs_nothing():
    model = Sequential([Conv2D(2, 3, use_bias=False, trainable=False, input_shape=(5, 5, 1)), Flatten(), Dense(2)])
    x = np.ones((2, 5, 5, 1), np.float32)
    model.forward(x, training=True)
    assert model.backward(np.ones((2, 2), np.float32), input_gradient=False) is None
    assert np.all(model.layers[0].kernel.grad == 0) and np.any(model.layers[-1].kernel.grad != 0)


def test_the_saved_state_is_freed_and_the_flag_restored():
    model = lenet_like()
    x = np.ones((2, 8, 8, 1), np.float32)
    dy = np.ones((2, 3), np.float32)
    model.forward(x, training=True)
    model.backward(dy, input_gradient=False)
    assert model.layers[0]._input_gradient_wanted is True
    with pytest.raises(RuntimeError):
        model.backward(dy, input_gradient=False)


@pytest.mark.parametrize("build", [lenet_like, residual_model])
def test_input_gradient_must_be_a_bool(build):
    model = build()
    x = np.ones((1, *_input_shape(model)), np.float32)
    model.forward(x, training=True)
    with pytest.raises(TypeError, match="input_gradient.*'no'"):
        model.backward(np.ones((1, 3), np.float32), input_gradient="no")


def test_train_on_batch_skips_the_input_gradient_and_matches_a_manual_step(monkeypatch):
    from convkit import initializers, optim

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((5, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 5)
    models = []
    for _ in range(2):
        initializers.set_seed(11)
        model = lenet_like()
        model.compile(optim.SGD(lr=0.1), loss="softmax_cross_entropy")
        models.append(model)
    fitted, manual = models
    calls = counting_backward_data(monkeypatch)
    fitted.train_on_batch(x, y)
    assert len(calls) == 1  # the second convolution's dx only: the first layer's input gradient is skipped
    manual.zero_grad()
    loss, dlogits = manual.loss(manual.forward(x, training=True), y)
    manual.backward(dlogits)
    manual.optimizer.step()
    for a, b in zip(fitted.trainable_parameters(), manual.trainable_parameters()):
        assert np.array_equal(a.value, b.value)
