"""Every layer: shape inference, config round trip, float64 finite-difference gradients, a descending SGD
step, freezing; and the layers whose arithmetic lives in convkit.layers against NumPy float64 references."""
import json

import numpy as np
import pytest
from conv_testing import conv_cases
from hypothesis import given, settings

from convkit import initializers, layers
from convkit.layers.activations import ActivationFunction, register_activation
from convkit.reference import conv_reference
from convkit.registry import get_layer_class
from convkit.testing import check_gradients


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Weights do not depend on which tests ran before."""
    initializers.set_seed(0)

L = layers

# (factory, input shape without the batch axis, or a list of them for merge layers)
CASES = [
    (lambda **kw: L.Dense(5, activation="relu", **kw), (3, 4)),
    (lambda **kw: L.Dense(3, use_bias=False, **kw), (6,)),
    (lambda **kw: L.Flatten(**kw), (3, 4, 2)),
    (lambda **kw: L.Reshape((4, -1), **kw), (3, 4, 2)),
    (lambda **kw: L.Conv1D(4, 3, padding="same", activation="leaky_relu", **kw), (9, 3)),
    (lambda **kw: L.Conv2D(4, 3, strides=2, activation="relu", **kw), (7, 7, 3)),
    (lambda **kw: L.Conv2D(6, 3, padding="same", padding_mode="reflect", groups=3, dilation_rate=2, **kw),
     (8, 8, 3)),
    (lambda **kw: L.Conv3D(2, 2, padding=1, **kw), (4, 4, 4, 2)),
    (lambda **kw: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", **kw), (6, 6, 3)),
    (lambda **kw: L.SeparableConv1D(4, 3, **kw), (8, 3)),
    (lambda **kw: L.SeparableConv2D(5, 3, padding="same", activation="relu", **kw), (6, 6, 3)),
    (lambda **kw: L.SpatiallySeparableConv2D(4, 3, padding="same", intermediate_filters=3, **kw), (6, 6, 2)),
    (lambda **kw: L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu", **kw), (4, 4, 2)),
    (lambda **kw: L.MaxPooling1D(2, **kw), (8, 3)),
    (lambda **kw: L.MaxPooling2D(3, strides=2, padding="same", **kw), (7, 7, 2)),
    (lambda **kw: L.MaxPooling3D(2, **kw), (4, 4, 4, 2)),
    (lambda **kw: L.AveragePooling1D(3, strides=1, **kw), (8, 3)),
    (lambda **kw: L.AveragePooling2D(3, strides=2, padding="same", **kw), (7, 7, 2)),
    (lambda **kw: L.AveragePooling3D(2, **kw), (4, 4, 4, 2)),
    (lambda **kw: L.GlobalMaxPooling(**kw), (5, 5, 3)),
    (lambda **kw: L.GlobalAveragePooling(keepdims=True, **kw), (5, 5, 3)),
    (lambda **kw: L.AdaptiveAveragePooling((2, 3), **kw), (5, 7, 3)),
    (lambda **kw: L.AdaptiveMaxPooling(2, **kw), (5, 3)),
    (lambda **kw: L.BatchNormalization(**kw), (5, 5, 3)),
    (lambda **kw: L.LayerNormalization(**kw), (5, 5, 3)),
    (lambda **kw: L.LayerNormalization(axis=(1, 2, 3), **kw), (3, 3, 2)),
    (lambda **kw: L.GroupNormalization(2, **kw), (4, 4, 4)),
    (lambda **kw: L.InstanceNormalization(**kw), (4, 4, 3)),
    (lambda **kw: L.LocalResponseNormalization(size=3, alpha=0.5, k=2.0, **kw), (3, 3, 5)),
    (lambda **kw: L.ZeroPadding1D(2, **kw), (5, 3)),
    (lambda **kw: L.ZeroPadding2D(((1, 0), (2, 1)), **kw), (4, 4, 2)),
    (lambda **kw: L.ZeroPadding3D(1, **kw), (2, 3, 2, 2)),
    (lambda **kw: L.SqueezeExcite(ratio=2, **kw), (4, 4, 6)),
    (lambda **kw: L.Add(**kw), [(4, 4, 3), (4, 4, 3), (4, 4, 3)]),
    (lambda **kw: L.Multiply(**kw), [(4, 3), (4, 3)]),
    (lambda **kw: L.Concatenate(**kw), [(4, 4, 3), (4, 4, 2)]),
    (lambda **kw: L.Concatenate(axis=1, **kw), [(2, 4, 3), (3, 4, 3)]),
    (lambda **kw: L.Activation("tanh", **kw), (4, 3)),
    (lambda **kw: L.Activation("softmax", axis=1, **kw), (4, 3)),
    (lambda **kw: L.Activation("gelu", approximate="tanh", **kw), (4, 3)),
    (lambda **kw: L.ReLU(**kw), (4, 3)),
    (lambda **kw: L.ReLU(max_value=0.5, **kw), (4, 3)),
    (lambda **kw: L.ReLU(negative_slope=0.2, **kw), (4, 3)),
    (lambda **kw: L.LeakyReLU(**kw), (4, 3)),
    (lambda **kw: L.ELU(alpha=0.5, **kw), (4, 3)),
    (lambda **kw: L.Softmax(**kw), (3, 5)),
    (lambda **kw: L.PReLU(**kw), (3, 3, 4)),
    (lambda **kw: L.PReLU(mode="scalar", alpha_initializer=initializers.constant(0.1), **kw), (3, 4)),
    (lambda **kw: L.Maxout(3, **kw), (2, 6)),
    (lambda **kw: L.Dropout(0.4, seed=1, **kw), (4, 5)),
    (lambda **kw: L.SpatialDropout1D(0.5, seed=2, **kw), (5, 6)),
    (lambda **kw: L.SpatialDropout2D(0.5, seed=3, **kw), (3, 3, 6)),
    (lambda **kw: L.SpatialDropout3D(0.5, seed=4, **kw), (2, 2, 2, 6)),
    (lambda **kw: L.DropConnect(L.Dense(4, activation="tanh", dtype=kw.get("dtype", "float32")), 0.5, seed=5, **kw),
     (3, 5)),
    (lambda **kw: L.DropConnect(L.SeparableConv2D(3, 3, dtype=kw.get("dtype", "float32")), 0.3, seed=6, **kw),
     (5, 5, 2)),
    (lambda **kw: L.StochasticDepth(0.5, seed=7, **kw), [(4, 3), (4, 3)]),
]
IDS = [f"{i}-{type(make()).__name__}" for i, (make, _) in enumerate(CASES)]


def as_list(value):
    return value if isinstance(value, list) else [value]


class FixedMask:
    """A seeded dropout-family layer whose generator is rewound before every forward: each call draws the same
    masks, so that finite differences and loss comparisons see one function. Other layers: themselves."""

    def __new__(cls, layer):
        if getattr(layer, "generator", None) is None:
            return layer
        return super().__new__(cls)

    def __init__(self, layer):
        self.layer, self.state = layer, layer.generator.get_state()

    def forward(self, x, training=False):
        self.layer.generator.set_state(self.state)
        return self.layer.forward(x, training)

    def backward(self, dy):
        return self.layer.backward(dy)

    def parameters(self):
        return self.layer.parameters()


def inputs_for(shape, rng, batch=3, dtype=np.float64):
    if isinstance(shape, list):
        return [rng.standard_normal((batch, *s)).astype(dtype) for s in shape]
    return rng.standard_normal((batch, *shape)).astype(dtype)


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_output_shape_matches_forward(make, shape):
    layer = make()
    x = inputs_for(shape, np.random.default_rng(0), dtype=np.float32)
    y = layer.forward(x)
    assert y.shape[1:] == tuple(layer.compute_output_shape(shape))
    assert y.shape[0] == 3
    assert y.dtype == np.float32


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_config_round_trip_gives_the_same_output(make, shape):
    rng = np.random.default_rng(1)
    layer = make()
    x = inputs_for(shape, rng, dtype=np.float32)
    layer.forward(x)
    for p in layer.parameters():  # not the initial values, so that a lost option would show
        p.assign(rng.standard_normal(p.shape) * 0.5 + (1.0 if "variance" in p.name else 0.0))
    config = json.loads(json.dumps(layer.get_config()))
    copy = get_layer_class(layer.registry_name).from_config(config)
    assert copy.get_config() == layer.get_config()
    copy.forward(x)
    assert [p.name for p in copy.parameters()] == [p.name for p in layer.parameters()]
    for p, q in zip(layer.parameters(), copy.parameters()):
        q.assign(p.value)
    np.testing.assert_array_equal(copy.forward(x), layer.forward(x))


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_gradients_by_finite_differences(make, shape):
    layer = make()
    x = inputs_for(shape, np.random.default_rng(2))
    report = check_gradients(FixedMask(layer), x, max_checks=15)
    assert report.checked > 0
    assert len(report.entries) == len(as_list(x)) + len(layer._weights)


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_sgd_step_decreases_a_loss(make, shape):
    rng = np.random.default_rng(3)
    layer = FixedMask(make(dtype="float64"))
    x = inputs_for(shape, rng)
    target = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return 0.5 * np.sum((layer.forward(x, training=True) - target) ** 2)

    before = loss()
    dx = layer.backward(layer.forward(x, training=True) - target)
    params = [p for p in layer.parameters() if p.trainable]
    steps = [(p.value, p.grad) for p in params] or list(zip(as_list(x), as_list(dx)))
    for value, grad in steps:
        assert np.any(grad != 0)
        value -= 1e-3 * grad
    assert loss() < before


@pytest.mark.parametrize("make,shape", CASES, ids=IDS)
def test_frozen_layer_returns_dx_and_leaves_its_gradients_alone(make, shape):
    rng = np.random.default_rng(4)
    layer = make()
    x = inputs_for(shape, rng, dtype=np.float32)
    layer.forward(x)
    layer.trainable = False
    before = [p.value.copy() for p in layer.parameters()]
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert all(d.shape == a.shape for d, a in zip(as_list(dx), as_list(x)))
    assert all(not p.trainable for p in layer.parameters())
    assert all(not p.grad.any() for p in layer.parameters())
    for p, value in zip(layer.parameters(), before):
        np.testing.assert_array_equal(p.value, value)  # BatchNorm's moving statistics included
    layer.trainable = True
    assert all(p.trainable for p in layer._weights) and not any(p.trainable for p in layer._state)


def test_backward_after_inference_forward_raises():
    layer = L.Dense(2)
    x = np.ones((2, 3), np.float32)
    layer.forward(x, training=True)
    layer.forward(x, training=False)
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.ones((2, 2), np.float32))


def test_gradients_accumulate():
    layer = L.Dense(2)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    once = layer.kernel.grad.copy()
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    np.testing.assert_allclose(layer.kernel.grad, 2 * once, rtol=1e-6)


@settings(max_examples=30)
@given(case=conv_cases())
def test_conv_layers_infer_the_shape_of_any_valid_convolution(case):
    x_shape, w_shape, options = case
    rank = len(x_shape) - 2
    layer = getattr(L, f"Conv{rank}D")(w_shape[-1], w_shape[:-2], strides=options["stride"],
                                        padding=options["padding"], padding_mode=options["padding_mode"],
                                        dilation_rate=options["dilation"], groups=options["groups"], dtype="float64")
    x = np.random.default_rng(0).standard_normal((max(x_shape[0], 1), *x_shape[1:]))
    y = layer.forward(x)
    assert y.shape[1:] == layer.compute_output_shape(x_shape[1:])
    np.testing.assert_allclose(y, conv_reference(x, layer.kernel.value, layer.bias.value, **options), rtol=1e-9,
                               atol=1e-12)


register_activation(ActivationFunction("test_layers.tanh", None, np.tanh, lambda dy, z, y: dy * (1 - y * y)))


def test_an_activation_the_ops_cannot_fuse_runs_after_the_op():
    layer = L.Conv2D(3, 3, activation="test_layers.tanh", dtype="float64")
    x = np.random.default_rng(11).standard_normal((2, 5, 5, 2))
    y = layer.forward(x)
    np.testing.assert_allclose(y, np.tanh(conv_reference(x, layer.kernel.value, layer.bias.value)), rtol=1e-10)
    check_gradients(layer, x, max_checks=15)
    assert layer.get_config()["activation"] == "test_layers.tanh"


# ---- against NumPy float64 references -----------------------------------------------------------------


def test_dense_on_leading_axes_matches_einsum():
    rng = np.random.default_rng(5)
    layer = L.Dense(4, activation="relu", dtype="float64")
    x = rng.standard_normal((2, 3, 5))
    y = layer.forward(x)
    expected = np.maximum(np.einsum("abi,io->abo", x, layer.kernel.value) + layer.bias.value, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_layer_matches_conv_reference():
    rng = np.random.default_rng(6)
    layer = L.Conv2D(4, (3, 2), strides=(2, 1), padding="same", padding_mode="circular", dilation_rate=1,
                     groups=2, activation="leaky_relu", dtype="float64")
    x = rng.standard_normal((2, 7, 6, 4))
    y = layer.forward(x)
    z = conv_reference(x, layer.kernel.value, layer.bias.value, stride=(2, 1), padding="same",
                       padding_mode="circular", groups=2)
    np.testing.assert_allclose(y, np.where(z > 0, z, 0.01 * z), rtol=1e-10, atol=1e-12)


def test_separable_and_depthwise_layers_match_conv_reference():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 6, 3))
    sep = L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same", dtype="float64")

    y = sep.forward(x)
    depthwise = conv_reference(x, sep.depthwise_kernel.value, padding="same", groups=3)
    expected = conv_reference(depthwise, sep.pointwise_kernel.value, sep.bias.value)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, dtype="float64", use_bias=False)
    y = dw.forward(x)
    np.testing.assert_allclose(y, conv_reference(x, dw.depthwise_kernel.value, groups=3), rtol=1e-10)
    assert dw.depthwise_kernel.shape == (3, 3, 1, 6) and dw.count_params() == 3 * 3 * 6


def test_squeeze_excite_matches_numpy():
    rng = np.random.default_rng(8)
    layer = L.SqueezeExcite(ratio=4, dtype="float64", bias_initializer=initializers.constant(0.1))
    x = rng.standard_normal((2, 3, 5, 8))
    y = layer.forward(x)
    s = x.mean(axis=(1, 2))
    h = np.maximum(s @ layer.reduce_kernel.value + layer.reduce_bias.value, 0)
    g = 1 / (1 + np.exp(-(h @ layer.expand_kernel.value + layer.expand_bias.value)))
    np.testing.assert_allclose(y, x * g[:, None, None, :], rtol=1e-12, atol=1e-14)
    assert layer.count_params() == 8 * 2 + 2 + 2 * 8 + 8


def test_merges_padding_and_reshapes_match_numpy():
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(L.Add()([a, b]), a + b)
    np.testing.assert_array_equal(L.Multiply()([a, b]), a * b)
    np.testing.assert_array_equal(L.Concatenate(axis=1)([a, b]), np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(L.ZeroPadding1D((1, 2))(a), np.pad(a, ((0, 0), (1, 2), (0, 0))))
    np.testing.assert_array_equal(L.Flatten()(a), a.reshape(2, 12))
    np.testing.assert_array_equal(L.Reshape((-1, 2))(a), a.reshape(2, 6, 2))


def test_batch_norm_updates_and_uses_moving_statistics():
    rng = np.random.default_rng(10)
    layer = L.BatchNormalization(momentum=0.25, dtype="float64")
    x = rng.standard_normal((6, 3, 3, 2)) * 2 + 5
    y = layer.forward(x, training=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.moving_mean.value, 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.value, 0.75 + 0.25 * var * 54 / 53, rtol=1e-12)
    y_eval = layer.forward(x, training=False)
    np.testing.assert_allclose(y_eval, (x - layer.moving_mean.value) / np.sqrt(layer.moving_variance.value + 1e-5),
                               rtol=1e-10)
    assert [p.name for p in layer.parameters()][-2:] == [f"{layer.name}/moving_mean", f"{layer.name}/moving_variance"]
    assert layer.count_params() == 8 and sum(p.size for p in layer.parameters() if p.trainable) == 4


# ---- initialisers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,std", [
    ("glorot_uniform", np.sqrt(2 / (9 * 16 + 9 * 32))), ("glorot_normal", np.sqrt(2 / (9 * 16 + 9 * 32))),
    ("he_uniform", np.sqrt(2 / (9 * 16))), ("he_normal", np.sqrt(2 / (9 * 16))),
    ("lecun_normal", np.sqrt(1 / (9 * 16)))])
def test_initializer_variance_uses_conv_fans(name, std):
    values = initializers.get(name)((3, 3, 16, 32), np.float64)
    assert values.shape == (3, 3, 16, 32) and values.dtype == np.float64
    assert abs(values.std() / std - 1) < 0.05
    if name.endswith("uniform"):
        assert np.abs(values).max() <= np.sqrt(3) * std


def test_constant_initializers_and_serialization():
    assert initializers.compute_fans((5, 5, 6, 16)) == (150, 400)
    assert initializers.compute_fans((120, 84)) == (120, 84)
    np.testing.assert_array_equal(initializers.get("ones")((2,)), [1, 1])
    np.testing.assert_array_equal(initializers.get("zeros")((2,)), [0, 0])
    c = initializers.constant(0.5)
    assert initializers.deserialize(json.loads(json.dumps(initializers.serialize(c))))((1,))[0] == 0.5
    with pytest.raises(ValueError, match="unknown initializer 'bogus'"):
        initializers.get("bogus")


def test_seeded_initialization_is_reproducible():
    initializers.set_seed(42)
    a = L.Dense(3)
    a.build_once((4,))
    initializers.set_seed(42)
    b = L.Dense(3)
    b.build_once((4,))
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)


# ---- argument errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,match", [
    (lambda: L.Dense(0), "units must be >= 1, got 0"),
    (lambda: L.Conv2D(4, (3, 3, 3)), r"kernel_size must be an int >= 1 or 2 of them, got \(3, 3, 3\)"),
    (lambda: L.Conv2D(4, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: L.Dense(4, activation="swish"), "activation must be None, 'linear' or one of"),
    (lambda: L.BatchNormalization(momentum=0.99 * 2), "momentum must be in"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "padding must be"),
    (lambda: L.Reshape((2, -1, -1)), "target_shape"),
])
def test_bad_configuration_raises_naming_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="expects inputs"):
        L.Conv2D(2, 3).forward(np.zeros((1, 5, 3), np.float32))
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        L.Dense(2).forward(np.zeros((1, 3), np.int32))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        L.GroupNormalization(3).forward(np.zeros((1, 2, 4), np.float32))
