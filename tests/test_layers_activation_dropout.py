"""Activation and dropout-family layers against NumPy float64 references: Dense / convolutions with every
activation name, the activation layers, the masks of the dropout layers (their backward is the mask times
dy / (1 - rate)), seeding and thread-count independence, DropConnect saving, Monte-Carlo dropout.
(Shapes, configs, finite-difference gradients, SGD steps and freezing of every layer: test_layers.py.)"""
import numpy as np
import pytest

import convkit
from convkit import initializers, ops, runtime
from convkit import layers as L
from convkit.layers.activations import ActivationFunction, register_activation, registered_activations
from convkit.network import Input, Model, Sequential
from convkit.reference import (
    conv_reference,
    maxout_reference,
    pointwise_activation_reference,
    prelu_reference,
    softmax_reference,
)
from convkit.testing import check_gradients


@pytest.fixture(autouse=True)
def seeded():
    initializers.set_seed(0)
    convkit.random.seed(0)


NAMED = [name for name in ops.ACTIVATIONS if name != "linear"]


def activation_reference(z: np.ndarray, name: str) -> np.ndarray:
    """The activation `name` with its default parameters, in NumPy float64."""
    if name in ("softmax", "log_softmax"):
        return softmax_reference(z, axis=-1, log=name == "log_softmax")
    return pointwise_activation_reference(z, name)[0]


def test_every_ops_activation_is_registered():
    assert set(registered_activations()) >= set(NAMED)


@pytest.mark.parametrize("name", NAMED)
def test_dense_with_each_activation_matches_numpy_and_finite_differences(name):
    rng = np.random.default_rng(0)
    layer = L.Dense(5, activation=name, dtype="float64")
    x = rng.standard_normal((4, 3)) * 3  # beyond relu6's and the hard functions' kinks for some values
    y = layer.forward(x)
    z = np.einsum("ni,io->no", x, layer.kernel.value) + layer.bias.value
    np.testing.assert_allclose(y, activation_reference(z, name), rtol=1e-12, atol=1e-14)
    check_gradients(layer, x, max_checks=None)


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("make", [lambda a: L.Conv2D(4, 3, padding="same", activation=a, dtype="float64"),
                                  lambda a: L.Conv2DTranspose(4, 3, strides=2, activation=a, dtype="float64")],
                         ids=["Conv2D", "Conv2DTranspose"])
def test_convolutions_with_each_activation_match_the_conv_reference(name, make):
    rng = np.random.default_rng(1)
    layer = make(name)
    x = rng.standard_normal((2, 4, 4, 3))
    y = layer.forward(x)
    if isinstance(layer, L.Conv2D):
        z = conv_reference(x, layer.kernel.value, layer.bias.value, padding="same")
        np.testing.assert_allclose(y, activation_reference(z, name), rtol=1e-10, atol=1e-12)
    assert layer.compute_output_shape((4, 4, 3)) == y.shape[1:]
    check_gradients(layer, x, max_checks=20)


def test_an_activation_whose_backward_needs_y_keeps_no_second_array():
    x = np.random.default_rng(2).standard_normal((3, 4))
    for name, keeps_z in [("tanh", False), ("softmax", False), ("relu", False), ("gelu", True)]:
        layer = L.Dense(3, activation=name, dtype="float64")
        y = layer.forward(x, training=True)
        _, _, z, saved_y = layer.saved()
        assert (z is not None) == keeps_z
        assert np.shares_memory(saved_y, y)


# ---- activation layers ------------------------------------------------------------------------------------


def test_activation_layers_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6)) * 4
    np.testing.assert_allclose(L.ReLU(max_value=6)(x), np.clip(x, 0, 6), rtol=0, atol=0)
    np.testing.assert_allclose(L.ReLU(negative_slope=0.1)(x), np.where(x > 0, x, 0.1 * x), rtol=1e-15)
    np.testing.assert_allclose(L.LeakyReLU()(x), np.where(x > 0, x, 0.3 * x), rtol=1e-15)
    np.testing.assert_allclose(L.ELU(0.5)(x), np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-13)
    np.testing.assert_allclose(L.Activation("relu6")(x), np.clip(x, 0, 6), rtol=0, atol=0)
    np.testing.assert_allclose(L.Activation("elu", alpha=0.2)(x), np.where(x > 0, x, 0.2 * np.expm1(x)), rtol=1e-13)
    np.testing.assert_allclose(L.Softmax(axis=1)(x), softmax_reference(x, axis=1), rtol=1e-13)
    np.testing.assert_allclose(L.Activation("log_softmax", axis=-2)(x), softmax_reference(x, axis=-2, log=True),
                               rtol=1e-13)
    prelu = L.PReLU(dtype="float64")
    prelu.build_once((3, 6))
    prelu.alpha.assign(np.linspace(0, 1, 6))
    np.testing.assert_allclose(prelu(x), prelu_reference(x, np.linspace(0, 1, 6)), rtol=1e-15)
    assert prelu.alpha.shape == (6,) and not prelu.alpha.decay
    np.testing.assert_allclose(L.Maxout(2)(x), maxout_reference(x, 2)[0], rtol=0)
    assert L.Maxout(3).compute_output_shape((3, 6)) == (3, 2)


def test_prelu_defaults_and_scalar_slope():
    layer = L.PReLU(mode="scalar", dtype="float64")
    x = np.array([[-2.0, 3.0], [-1.0, -4.0]])
    np.testing.assert_array_equal(layer(x), [[-0.5, 3.0], [-0.25, -1.0]])  # alpha initialised to 0.25
    assert layer.alpha.shape == (1,)
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    np.testing.assert_array_equal(layer.alpha.grad, [-7.0])  # the sum of x over x <= 0


register_activation(ActivationFunction("test_layers_activation_dropout.square", None, lambda z: z * z,
                                       lambda dy, z, y: 2 * z * dy))


def test_activation_layer_takes_an_activation_registered_through_the_hook():
    layer = L.Activation("test_layers_activation_dropout.square", dtype="float64")
    x = np.random.default_rng(4).standard_normal((3, 4))
    np.testing.assert_array_equal(layer(x), x * x)
    check_gradients(layer, x, max_checks=None)


# ---- dropout-family layers -----------------------------------------------------------------------------


def test_dropout_keeps_scales_and_its_backward_is_the_mask():
    rate = 0.3
    x = np.random.default_rng(5).uniform(1, 2, (64, 100)).astype(np.float32)
    layer = L.Dropout(rate)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
    dy = np.random.default_rng(6).standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, np.where(kept, dy / (1 - rate), 0), rtol=1e-6, atol=0)
    assert (dx[~kept] == 0).all()


@pytest.mark.parametrize("layer,shape", [(L.Dropout(0.5), (2, 3, 4)), (L.SpatialDropout1D(0.5), (2, 5, 3)),
                                         (L.SpatialDropout2D(0.5), (2, 3, 3, 4)),
                                         (L.SpatialDropout3D(0.5), (2, 2, 2, 2, 4)),
                                         (L.DropConnect(L.Dense(3), 0.5), (2, 4))])
def test_inference_forward_is_the_identity_and_draws_nothing(layer, shape):
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    state = convkit.random.get_state()
    y = layer.forward(x, training=False)
    if isinstance(layer, L.DropConnect):
        np.testing.assert_array_equal(y, layer.layer.forward(x))
    else:
        assert y is x
    assert convkit.random.get_state() == state


def test_spatial_dropout_drops_whole_feature_maps():
    rate = 0.5
    x = np.random.default_rng(8).uniform(1, 2, (8, 5, 5, 16))
    layer = L.SpatialDropout2D(rate, dtype="float64")
    y = layer.forward(x, training=True)
    kept = (y != 0).reshape(8, 25, 16)
    assert (kept == kept[:, :1]).all()  # one decision per (sample, channel)
    assert 0 < kept[:, 0].mean() < 1
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dy), np.where(y != 0, 1 / (1 - rate), 0.0))


def test_stochastic_depth_drops_the_branch_per_sample():
    rate = 0.5
    rng = np.random.default_rng(9)
    shortcut, branch = rng.standard_normal((32, 3, 4)), rng.standard_normal((32, 3, 4))
    layer = L.StochasticDepth(rate)
    np.testing.assert_array_equal(layer([shortcut, branch]), shortcut + branch)
    y = layer.forward([shortcut, branch], training=True)
    kept = np.array([np.allclose(y[n], shortcut[n] + branch[n] / (1 - rate), rtol=1e-15) for n in range(32)])
    dropped = np.array([np.array_equal(y[n], shortcut[n]) for n in range(32)])
    assert (kept ^ dropped).all() and kept.any() and dropped.any()
    dy = rng.standard_normal(y.shape)
    d_shortcut, d_branch = layer.backward(dy)
    np.testing.assert_array_equal(d_shortcut, dy)
    np.testing.assert_allclose(d_branch, np.where(kept[:, None, None], dy / (1 - rate), 0.0), rtol=1e-15)


def test_drop_connect_computes_with_the_masked_kernel_and_keeps_the_plain_one():
    rate = 0.5
    x = np.random.default_rng(10).standard_normal((4, 6))
    layer = L.DropConnect(L.Dense(5, activation="relu", dtype="float64"), rate, seed=11)
    plain = layer.forward(x).copy()
    kernel = layer.layer.kernel.value.copy()
    dropped, mask = ops.drop_connect(kernel, rate, generator=convkit.random.Generator(11))  # the layer's first draw
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, np.maximum(np.einsum("ni,io->no", x, dropped) + layer.layer.bias.value, 0),
                               rtol=1e-12, atol=1e-14)
    assert 0 < mask.mean() < 1
    np.testing.assert_array_equal(layer.layer.kernel.value, kernel)  # put back after the call
    np.testing.assert_array_equal(layer.forward(x), plain)
    assert [p.name for p in layer.parameters()] == [p.name for p in layer.layer.parameters()]


def test_drop_connect_adds_to_the_gradient_already_held():
    x = np.random.default_rng(12).standard_normal((4, 6))
    layer = L.DropConnect(L.Dense(3, dtype="float64"), 0.5, seed=1)
    y = layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
    once = layer.layer.kernel.grad.copy()
    layer.generator.set_state({"algorithm": "philox4x32-10", "seed": 1, "counter": 0})
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    np.testing.assert_allclose(layer.layer.kernel.grad, 2 * once, rtol=1e-15)
    assert (once[~(ops.drop_connect(np.ones((6, 3)), 0.5, generator=convkit.random.Generator(1))[1])] == 0).all()


def test_drop_connect_called_twice_in_a_graph_gets_each_calls_values_back():
    x_in = Input((4,))
    shared = L.DropConnect(L.Dense(4, activation="tanh", dtype="float64"), 0.5, seed=2, dtype="float64")
    model = Model(x_in, shared(shared(x_in)))
    state = shared.generator.get_state()

    class RewoundModel:  # the same two masks on every forward, for finite differences
        def forward(self, x, training=False):
            shared.generator.set_state(state)
            return model.forward(x, training)

        backward, parameters = model.backward, model.parameters

    check_gradients(RewoundModel(), np.random.default_rng(16).standard_normal((3, 4)), max_checks=None)


def test_drop_connect_model_saves_and_loads(tmp_path):
    model = Sequential([L.DropConnect(L.Conv2D(4, 3, activation="relu"), 0.25, seed=3, input_shape=(6, 6, 2)),
                        L.Flatten(), L.DropConnect(L.Dense(2), 0.5)])
    x = np.random.default_rng(13).standard_normal((3, 6, 6, 2)).astype(np.float32)
    expected = model.predict(x)
    model.save(tmp_path / "model.zip")
    loaded = convkit.load_model(tmp_path / "model.zip")
    assert [type(layer).__name__ for layer in loaded.layers] == ["DropConnect", "Flatten", "DropConnect"]
    assert loaded.get_config() == model.get_config()
    assert [p.name for p in loaded.parameters()] == [p.name for p in model.parameters()]
    np.testing.assert_array_equal(loaded.predict(x), expected)
    convkit.random.seed(4)
    a = model.forward(x, training=True)
    convkit.random.seed(4)
    np.testing.assert_array_equal(loaded.forward(x, training=True), a)  # same seed, same masks


DROPPING = [(lambda: L.Dropout(0.5), (4, 6, 6, 8)), (lambda: L.SpatialDropout2D(0.5), (4, 6, 6, 8)),
            (lambda: L.DropConnect(L.Conv2D(8, 3), 0.5), (4, 6, 6, 8)),
            (lambda: L.StochasticDepth(0.5), [(4, 6, 6, 8), (4, 6, 6, 8)])]


def run_training_forward(make, shape):
    rng = np.random.default_rng(14)
    initializers.set_seed(0)
    layer = make()
    x = [rng.standard_normal((s)).astype(np.float32) for s in shape] if isinstance(shape, list) else \
        rng.standard_normal(shape).astype(np.float32)
    return layer.forward(x, training=True)


@pytest.mark.parametrize("make,shape", DROPPING)
def test_masks_follow_the_global_seed(make, shape):
    convkit.random.seed(21)
    first = run_training_forward(make, shape)
    second = run_training_forward(make, shape)
    assert not np.array_equal(first, second)  # the global generator moved on
    convkit.random.seed(21)
    np.testing.assert_array_equal(run_training_forward(make, shape), first)


@pytest.mark.parametrize("make,shape", DROPPING)
def test_masks_do_not_depend_on_the_thread_count(make, shape):
    threads = runtime.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            runtime.set_num_threads(n)
            convkit.random.seed(5)
            results.append(run_training_forward(make, shape))
    finally:
        runtime.set_num_threads(threads)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_a_seeded_layer_uses_its_own_generator():
    x = np.ones((16, 16), np.float32)
    state = convkit.random.get_state()
    a, b = L.Dropout(0.5, seed=7), L.Dropout(0.5, seed=7)
    first = a.forward(x, training=True)
    np.testing.assert_array_equal(b.forward(x, training=True), first)
    assert not np.array_equal(a.forward(x, training=True), first)  # its generator moved on
    assert convkit.random.get_state() == state  # the global one was not touched
    assert L.Dropout.from_config(a.get_config()).seed == 7


def test_monte_carlo_dropout_predictions_vary():
    model = Sequential([L.Dense(32, activation="relu", input_shape=(4,)), L.Dropout(0.5), L.Dense(2)])
    x = np.random.default_rng(15).standard_normal((10, 4)).astype(np.float32)
    mean, variance = model.predict(x, mc_samples=8)
    assert mean.shape == variance.shape == (10, 2)
    assert (variance > 0).all()
    np.testing.assert_array_equal(model.predict(x), model.predict(x))  # inference: no dropout


# ---- argument errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,error,match", [
    (lambda: L.Dropout(1.0), ValueError, r"rate must be in \[0, 1\), got 1.0"),
    (lambda: L.SpatialDropout2D(-0.1), ValueError, "rate must be in"),
    (lambda: L.Dropout(0.5, seed=-1), ValueError, "seed must be in"),
    (lambda: L.ReLU(max_value=6, negative_slope=0.1), ValueError, "max_value or negative_slope, not both"),
    (lambda: L.ReLU(max_value=0), ValueError, "max_value must be None or > 0, got 0"),
    (lambda: L.LeakyReLU(-0.1), ValueError, "alpha must be >= 0, got -0.1"),
    (lambda: L.PReLU(mode="spatial"), ValueError, "mode must be one of"),
    (lambda: L.Maxout(0), ValueError, "k must be >= 1"),
    (lambda: L.Activation("swish"), ValueError, "activation must be None, 'linear' or one of"),
    (lambda: L.Activation("relu", axis=1), TypeError, "takes no parameter 'axis'"),
    (lambda: L.Activation("gelu", approximate="erf"), ValueError, "approximate must be"),
    (lambda: L.DropConnect(L.Flatten(), 0.5), TypeError, "layer must be a Dense or convolution layer"),
    (lambda: L.DropConnect(L.Dense(2), 0.5, dtype="float64"), ValueError, "differs from the wrapped layer's"),
])
def test_bad_configuration_raises_naming_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_shapes_raise_at_build():
    with pytest.raises(ValueError, match="axis must be a non-batch axis"):
        L.Softmax(axis=0).forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="axis must be a non-batch axis"):
        L.Activation("softmax", axis=3).forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="k=4 must divide the 6 channels"):
        L.Maxout(4).forward(np.zeros((2, 6), np.float32))
    with pytest.raises(ValueError, match="expects inputs"):
        L.SpatialDropout2D(0.5).forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"takes \[shortcut, branch\] of one shape"):
        L.StochasticDepth(0.5).forward([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
