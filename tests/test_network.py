"""Sequential and graph Models: end-to-end gradients of a ResNet basic block, an Inception-like concat, an SE
block, shared layers and several inputs/outputs; freezing; the summary's numbers (LeNet-5, VGG-16)."""
import json
from pathlib import Path

import numpy as np
import pytest

import convkit
from convkit import Input, Model, Sequential
from convkit.layers import (
    Add,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling,
    Layer,
    MaxPooling2D,
    Multiply,
    SqueezeExcite,
)
from convkit.network import network_from_config, network_to_config
from convkit.registry import register_layer
from convkit.summary import activation_count, forward_flops
from convkit.testing import check_gradients


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Weights do not depend on which tests ran before."""
    convkit.initializers.set_seed(0)


def randomize(model, seed):
    """Random weights and biases: no pre-activation sits exactly on a ReLU kink (zero biases on zero inputs
    would), where finite differences and the gradient legitimately disagree."""
    rng = np.random.default_rng(seed)
    for p in model.trainable_parameters():
        p.assign(rng.standard_normal(p.shape) * 0.5)
    return model


@register_layer(name="test_network.ReLU")
class ReLU(Layer):
    """A test-local activation layer in plain NumPy (the activation layers come later)."""

    def forward(self, x, training=False):
        y = np.maximum(x, 0)
        if training:
            self.save_for_backward(y)
        return y

    def backward(self, dy):
        (y,) = self.saved()
        return dy * (y > 0)


def resnet_basic_block(x, filters):
    y = Conv2D(filters, 3, padding="same", use_bias=False)(x)
    y = BatchNormalization()(y)
    y = ReLU()(y)
    y = Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = BatchNormalization()(y)
    return ReLU()(Add()([x, y]))


def inception_module(x):
    branches = [Conv2D(2, 1, activation="relu")(x),
                Conv2D(3, 3, padding="same", activation="relu")(Conv2D(2, 1, activation="relu")(x)),
                Conv2D(2, 1)(MaxPooling2D(3, strides=1, padding="same")(x))]
    return Concatenate()(branches)


def test_resnet_basic_block_gradients():
    x = Input((5, 5, 4))
    model = Model(x, resnet_basic_block(x, 4))
    report = check_gradients(model, np.random.default_rng(0).standard_normal((3, 5, 5, 4)), max_checks=20)
    assert len(report.entries) == 1 + 2 + 4  # x, two kernels, two (gamma, beta)


def test_inception_concat_gradients_and_shape():
    x = Input((6, 6, 3))
    model = randomize(Model(x, inception_module(x)), 1)
    assert model.outputs[0].shape == (6, 6, 7)
    check_gradients(model, np.random.default_rng(1).standard_normal((2, 6, 6, 3)), max_checks=15)


def test_squeeze_excite_block_in_a_graph_gradients():
    x = Input((4, 4, 8))
    y = Conv2D(8, 3, padding="same", activation="relu")(x)
    model = randomize(Model(x, Add()([x, SqueezeExcite(ratio=4)(y)])), 2)
    check_gradients(model, np.random.default_rng(2).standard_normal((2, 4, 4, 8)), max_checks=15)


def test_dense_connections_and_shared_layer_sum_gradients_at_fan_out():
    x = Input((4, 4, 3))
    shared = Conv2D(3, 3, padding="same", activation="leaky_relu")
    a = shared(x)
    b = shared(a)  # the same weights twice: its gradient is the sum of both calls'
    c = Concatenate()([x, a, b])  # dense connections: x and a are read twice
    model = randomize(Model(x, Conv2D(2, 1)(c)), 3)
    assert len(model.layers) == 4 and model.count_params() == 3 * 3 * 3 * 3 + 3 + 9 * 2 + 2
    check_gradients(model, np.random.default_rng(3).standard_normal((2, 4, 4, 3)), max_checks=20)


def test_several_inputs_and_outputs():
    a, b = Input((5,)), Input((5,))
    h = Dense(4, activation="relu")(Multiply()([a, b]))
    model = randomize(Model([a, b], [Dense(2)(h), Add()([a, b])]), 4)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((3, 5)), rng.standard_normal((3, 5))]
    outs = model.forward(xs)
    assert [o.shape for o in outs] == [(3, 2), (3, 5)]
    np.testing.assert_array_equal(outs[1], xs[0] + xs[1])
    report = check_gradients(model, xs, max_checks=10)
    assert [e.name for e in report.entries[:2]] == ["x[0]", "x[1]"]


def test_graph_equals_the_same_layers_applied_by_hand():
    rng = np.random.default_rng(5)
    x = Input((6, 6, 2))
    conv, dense = Conv2D(3, 3, activation="relu"), Dense(4)
    model = Model(x, dense(GlobalAveragePooling()(conv(x))))
    data = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    expected = dense(conv(data).mean(axis=(1, 2)))
    np.testing.assert_allclose(model(data), expected, rtol=1e-5, atol=1e-6)


def lenet5():
    return Sequential([
        Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2),
        Conv2D(16, 5, padding="valid", activation="relu"), MaxPooling2D(2), Flatten(),
        Dense(120, activation="relu"), Dense(84, activation="relu"), Dense(10)])


def test_sequential_gradients_and_input_shape_inference():
    model = Sequential([Conv2D(3, 3, activation="relu"), AveragePooling2D(2), Flatten(), Dense(2)])
    assert not model.built
    x = np.random.default_rng(6).standard_normal((2, 6, 6, 2))
    assert model(x).shape == (2, 2) and model.built
    randomize(model, 6)
    check_gradients(model, x, max_checks=15)
    model2 = Sequential(input_shape=(6, 6, 2))
    model2.add(Conv2D(3, 3))
    assert model2.layers[0].built and model2.summary_nodes()[0][2] == (4, 4, 3)


def test_lenet5_summary_shows_61706_params():
    model = lenet5()
    text = model.summary(print_fn=None)
    assert model.count_params() == 61706
    assert "Total params: 61,706" in text and "Trainable params: 61,706" in text and "Non-trainable params: 0" in text
    assert "(None, 28, 28, 6)" in text and "(None, 5, 5, 16)" in text
    # Convs: 2 * pixels * C_out * taps * C_in + bias; dense: 2 * in * out + bias; pools: one per tap
    convs = 28 * 28 * 6 * (2 * 25 + 1) + 10 * 10 * 16 * (2 * 150 + 1)
    dense = 120 * (2 * 400 + 1) + 84 * (2 * 120 + 1) + 10 * (2 * 84 + 1)
    pools = 14 * 14 * 6 * 4 + 5 * 5 * 16 * 4
    assert forward_flops(model) == convs + dense + pools
    assert activation_count(model) == 28 * 28 + 28 * 28 * 6 + 14 * 14 * 6 + 10 * 10 * 16 + 5 * 5 * 16 + 120 + 84 + 10


def vgg16():
    layers = []
    for block, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for i in range(convs):
            options = {"input_shape": (224, 224, 3)} if not layers else {}
            layers.append(Conv2D(filters, 3, padding="same", activation="relu", **options))
        layers.append(MaxPooling2D(2))
    return Sequential([*layers, Flatten(), Dense(4096, activation="relu"), Dense(4096, activation="relu"), Dense(1000)])


def test_vgg16_params_and_activations():
    model = vgg16()
    assert model.count_params() == 138_357_544
    assert "Total params: 138,357,544" in model.summary(print_fn=None)
    # The input and every conv, pool and dense output (Flatten is a view): ~15.2M values per image
    assert activation_count(model) == 15_237_608
    assert abs(forward_flops(model) / 2 - 15.5e9) < 0.1e9  # the well-known ~15.5G multiply-adds


def test_graph_summary_lists_connections():
    x = Input((8, 8, 3), name="image")
    model = Model(x, inception_module(x), name="inception")
    text = model.summary(print_fn=None)
    assert 'Model: "inception"' in text and "Connected to" in text and "image[0][0]" in text
    assert f"Total params: {model.count_params():,}" in text


def test_model_config_round_trip_rebuilds_the_same_graph():
    x = Input((5, 5, 4))
    model = Model(x, resnet_basic_block(x, 4))
    copy = network_from_config(json.loads(json.dumps(network_to_config(model))))
    for p, q in zip(model.parameters(), copy.parameters()):
        assert p.name == q.name
        q.assign(p.value)
    data = np.random.default_rng(7).standard_normal((2, 5, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(copy(data), model(data))
    seq = lenet5()
    assert Sequential.from_config(json.loads(json.dumps(seq.get_config()))).count_params() == 61706


def sgd_step(model, x, target, lr=0.01):
    model.zero_grad()
    y = model.forward(x, training=True)
    model.backward(y - target)
    for p in model.trainable_parameters():
        p.value -= lr * p.grad


def test_freezing_leaves_weights_bit_identical_across_steps():
    rng = np.random.default_rng(8)
    x = Input((6, 6, 3))
    base = Conv2D(4, 3, padding="same", activation="relu")
    norm = BatchNormalization()
    head = Dense(2)
    model = Model(x, head(GlobalAveragePooling()(norm(base(x)))))
    data, target = rng.standard_normal((4, 6, 6, 3)).astype(np.float32), rng.standard_normal((4, 2))
    sgd_step(model, data, target)
    base.trainable = norm.trainable = False
    frozen = {p.name: p.value.copy() for layer in (base, norm) for p in layer.parameters()}
    head_before = head.kernel.value.copy()
    for _ in range(3):
        sgd_step(model, data, target)
    for layer in (base, norm):
        for p in layer.parameters():
            assert np.array_equal(p.value, frozen[p.name]), p.name
    assert not np.array_equal(head.kernel.value, head_before)
    assert {p.name for p in model.trainable_parameters()} == {head.kernel.name, head.bias.name}


def test_network_errors():
    x = Input((3,))
    with pytest.raises(ValueError, match="not among the Model's inputs"):
        Model(x, Add()([x, Input((3,))]))
    with pytest.raises(ValueError, match="named 'twin'"):
        Sequential([Dense(2, name="twin"), Dense(2, name="twin")])
    model = Sequential([Dense(2)], input_shape=(3,))
    model.forward(np.ones((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="training=True"):
        model.backward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    assert model.get_layer(model.layers[0].name) is model.layers[0]
    with pytest.raises(ValueError, match="expects arrays of shape"):
        Model(x, Dense(2)(x)).forward(np.ones((1, 4), np.float32))
    with pytest.raises(TypeError, match="do not nest yet"):
        model(x)
    with pytest.raises(TypeError, match="takes a list of tensors"):
        Add()(x)


def test_public_names():
    assert convkit.Sequential is Sequential and convkit.Model is Model and convkit.Input is Input
    assert convkit.load_model is convkit.saving.load_model
    assert convkit.Parameter is convkit.parameter.Parameter


def test_readme_layers_section_runs(tmp_path, monkeypatch):
    """The code blocks of README's "Layers and models" section run as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Layers and models", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)  # the example saves a file
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    scale = namespace["ChannelScale"](init=2.0)
    check_gradients(scale, np.random.default_rng(9).standard_normal((2, 3, 4)))
