"""convkit.export.to_onnx: every zoo model and hand-built models covering every built-in layer, run by
onnxruntime and compared with convkit's own inference output."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convkit import Input, Model, Sequential, export, models
from convkit.layers import (
    ELU, Activation, AdaptiveAveragePooling, AdaptiveMaxPooling, Add, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, BatchNormalization, Concatenate, Conv1D, Conv2D, Conv2DTranspose, Conv3D, Dense,
    DepthwiseConv2D, DropConnect, Dropout, Flatten, GlobalAveragePooling, GlobalAveragePooling1D,
    GlobalMaxPooling, GlobalMaxPooling3D, GroupNormalization, InstanceNormalization, Layer, LayerNormalization,
    LayerScale, LeakyReLU, LocalResponseNormalization, MaxPooling1D, MaxPooling2D, MaxPooling3D, Maxout, Multiply,
    PReLU, ReLU, Reshape, SeparableConv1D, SeparableConv2D, Softmax, SpatialDropout1D, SpatialDropout2D,
    SpatialDropout3D, SpatiallySeparableConv2D, SqueezeExcite, StochasticDepth, SyncBatchNormalization,
    ZeroPadding1D, ZeroPadding2D, ZeroPadding3D,
)
from convkit.registry import get_layer_class, register_layer, registered_layers

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def randomize_state(model, seed: int = 0) -> None:
    """Random biases, BatchNorm statistics, scales and shifts (kernels keep their initialisation): freshly built
    layers have zero biases and identity normalisations, which would hide a wrongly exported one."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        kind = p.name.rsplit("/", 1)[-1]
        if kind == "moving_variance":
            p.assign(rng.uniform(0.5, 2.0, p.shape))
        elif kind in ("gamma", "alpha"):
            p.assign(rng.uniform(0.5, 1.5, p.shape) if kind == "gamma" else rng.uniform(0.0, 0.5, p.shape))
        elif kind in ("bias", "beta", "moving_mean", "reduce_bias", "expand_bias"):
            p.assign(rng.normal(0.0, 0.3, p.shape))


def run_onnx(data: bytes, xs: list) -> list:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def assert_exports_equal(model, input_shapes, opset: int = 17, seed: int = 0) -> None:
    """onnxruntime's outputs of the exported model equal convkit's within float32 rounding."""
    randomize_state(model, seed)
    rng = np.random.default_rng(seed + 1)
    xs = [rng.normal(size=(2, *shape)).astype(np.float32) for shape in input_shapes]
    several = isinstance(model, Model) and not model._single_input
    expected = model.forward(xs if several else xs[0])
    expected = expected if isinstance(expected, list) else [expected]
    got = run_onnx(export.onnx_bytes(model, input_shapes if several else input_shapes[0], opset=opset), xs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5 * max(1.0, float(np.abs(e).max())))


# ---- the zoo ------------------------------------------------------------------------------------------------

# The smallest square input each architecture accepts (padding lets most of them take 1x1).
ZOO_INPUTS = {
    "alexnet": 67, "convnext_tiny": 32, "densenet121": 29, "googlenet": 1, "lenet1": 16, "lenet5": 32,
    "lenet5_modern": 2, "mobilenet": 1, "resnet18": 1, "resnet18_cifar": 1, "resnet34": 1, "resnet50": 1,
    "resnet101": 1, "resnet152": 1, "resnet_cifar": 1, "resnext50_32x4d": 1, "se_resnet50": 1, "vgg11": 32,
    "vgg16": 32, "vgg19": 32, "vgg_cifar": 32, "xception": 7,
}


def test_every_zoo_model_has_a_test_input():
    assert sorted(ZOO_INPUTS) == models.available()


@pytest.mark.parametrize("name", sorted(ZOO_INPUTS))
def test_zoo_model_matches_onnxruntime(name):
    size = ZOO_INPUTS[name]
    shape = (size, size, 1 if name.startswith("lenet") else 3)
    assert_exports_equal(models.get(name, input_shape=shape, classes=5), [shape])


def test_lenet5_modern_at_its_full_size():
    assert_exports_equal(models.lenet5_modern(input_shape=(28, 28, 1)), [(28, 28, 1)])


# ---- every built-in layer, in small hand-built models -------------------------------------------------------

def seq(shape, *layers):
    return Sequential(list(layers), input_shape=shape)


def merges_model():
    x = Input((6, 6, 4))
    conv = Conv2D(4, 3, padding=1)(x)            # channels-first inside the graph
    norm = LayerNormalization()(x)               # channels-last: merges must reconcile the layouts
    total = Add()([conv, norm, x])
    product = Multiply()([total, conv])
    channels = Concatenate()([product, norm])
    rows = Concatenate(axis=1)([channels, channels])
    padded = ZeroPadding2D(((1, 0), (2, 1)))(rows)
    residual = StochasticDepth(0.2)([conv, Conv2D(4, 1)(conv)])
    return Model(x, [padded, residual]), [(6, 6, 4)]


def two_inputs_model():
    a, b = Input((5, 4, 3), name="image"), Input((6,), name="features")
    y = GlobalAveragePooling()(Conv2D(6, 3, activation="relu")(a))
    return Model([a, b], Dense(2)(Multiply()([y, Dense(6)(b)]))), [(5, 4, 3), (6,)]


def adaptive_model():
    x = Input((7, 5, 3))
    y = Conv2D(3, 1)(x)
    return Model(x, [AdaptiveAveragePooling((3, 2))(y), AdaptiveMaxPooling((2, 5))(y), AdaptiveAveragePooling(1)(x),
                     GlobalMaxPooling()(y)]), [(7, 5, 3)]


CASES = {
    "conv2d": lambda: (seq(
        (9, 8, 3),
        Conv2D(4, 3, padding=((1, 2), (0, 1)), padding_mode="reflect", activation="relu"),
        Conv2D(6, 3, strides=2, padding="same", padding_mode="replicate", groups=2, activation="elu"),
        Conv2D(6, 2, padding="same", dilation_rate=2, padding_mode="circular", use_bias=False, activation="gelu"),
        Conv2D(3, 1, activation="sigmoid")), [(9, 8, 3)]),
    "conv1d": lambda: (seq(
        (11, 3),
        Conv1D(4, 3, strides=2, padding="same", padding_mode="reflect", activation="tanh"),
        Conv1D(2, 2, dilation_rate=2, padding=((2, 1),), padding_mode="circular", activation="hard_swish"),
        SeparableConv1D(3, 3, padding=1, depth_multiplier=2, activation="hard_sigmoid")), [(11, 3)]),
    "conv3d_pool3d": lambda: (seq(
        (5, 4, 6, 2),
        Conv3D(3, 3, padding=1, padding_mode="replicate", activation="relu6"),
        Conv3D(2, (2, 1, 3), strides=(1, 2, 2), activation="softmax"),
        MaxPooling3D((2, 1, 1)), AveragePooling3D(2, strides=1, padding="same"), GlobalMaxPooling3D(keepdims=True),
        Flatten()), [(5, 4, 6, 2)]),
    "depthwise_separable": lambda: (seq(
        (8, 7, 4),
        DepthwiseConv2D(3, depth_multiplier=2, padding="same", padding_mode="reflect", activation="relu"),
        SeparableConv2D(5, 3, strides=2, padding=1, activation="log_softmax"),
        SpatiallySeparableConv2D(4, (3, 2), strides=(2, 1), padding="same", padding_mode="replicate",
                                 intermediate_filters=3, activation="leaky_relu")), [(8, 7, 4)]),
    "conv_transpose": lambda: (seq(
        (4, 5, 4),
        Conv2DTranspose(6, 3, strides=2, padding=1, output_padding=1, groups=2, activation="relu"),
        Conv2DTranspose(3, (2, 3), strides=(2, 1), padding="same", use_bias=False, activation="tanh"),
        Conv2DTranspose(2, 3, dilation_rate=2)), [(4, 5, 4)]),
    "pooling": lambda: (seq(
        (9, 7, 3),
        MaxPooling2D(3, strides=2, padding="same"), AveragePooling2D(2, strides=1, padding=((1, 0), (0, 1))),
        AveragePooling2D(2, padding="same"), GlobalAveragePooling(keepdims=True), Dense(4)), [(9, 7, 3)]),
    "pooling1d": lambda: (seq(
        (10, 3),
        MaxPooling1D(3, strides=2, padding=1), AveragePooling1D(2, padding="same"), GlobalAveragePooling1D()),
        [(10, 3)]),
    "adaptive_pooling": adaptive_model,
    "normalization": lambda: (seq(
        (6, 5, 8),
        BatchNormalization(epsilon=1e-3), GroupNormalization(4), InstanceNormalization(center=False),
        LayerNormalization(), LayerNormalization(axis=(1, 2, 3), scale=False),
        Conv2D(8, 1), LocalResponseNormalization(size=3, k=2.0),
        LocalResponseNormalization(size=4, alpha=0.5, beta=0.5),
        BatchNormalization(scale=False, center=False), GroupNormalization(2, scale=False),
        SyncBatchNormalization(momentum=0.2)), [(6, 5, 8)]),
    "dense_reshape": lambda: (seq(
        (4, 3, 6),
        Dense(5, activation="relu"), Reshape((12, 5)), Dense(4, use_bias=False), Flatten(),
        Dense(7, activation="softmax"), Reshape((7, 1)), Dense(2)), [(4, 3, 6)]),
    "activations": lambda: (seq(
        (5, 6),
        Activation("relu"), Activation("gelu", approximate="tanh"), Activation("leaky_relu", alpha=0.2),
        Activation("elu", alpha=0.5), ReLU(max_value=0.8), ReLU(negative_slope=0.1), ReLU(), Dense(6), LeakyReLU(),
        ELU(), PReLU(), PReLU(mode="scalar"), Activation("linear"), Activation("hard_sigmoid"), Maxout(2),
        Softmax(axis=1), Activation("log_softmax", axis=-1)), [(5, 6)]),
    "channels_first_axes": lambda: (seq(
        (4, 5, 3),
        Conv2D(4, 1), Softmax(axis=1), PReLU(), Activation("log_softmax", axis=2), Maxout(2),
        Conv2D(2, 1), Activation("softmax", axis=-1)), [(4, 5, 3)]),
    "regularisation": lambda: (seq(
        (6, 6, 3),
        Conv2D(4, 3, padding=1), SpatialDropout2D(0.3), Dropout(0.5), DropConnect(Conv2D(5, 3, activation="relu"), 0.3),
        Flatten(), DropConnect(Dense(4), 0.5)), [(6, 6, 3)]),
    "dropout_1d_3d": lambda: (seq(
        (3, 4, 2, 2), SpatialDropout3D(0.5), Conv3D(2, 1), Reshape((24, 2)), SpatialDropout1D(0.5)), [(3, 4, 2, 2)]),
    "merges": merges_model,
    "two_inputs": two_inputs_model,
    "padding": lambda: (seq((5, 3), ZeroPadding1D((2, 1)), Conv1D(2, 3), ZeroPadding1D(1)), [(5, 3)]),
    "padding_2d_3d": lambda: (seq(
        (2, 3, 2, 2), ZeroPadding3D(((0, 1), 1, (2, 0))), Reshape((15, 4, 2)), ZeroPadding2D((1, 2))),
        [(2, 3, 2, 2)]),
    "scale_squeeze_excite": lambda: (seq(
        (5, 5, 8), Conv2D(8, 3, padding=1), SqueezeExcite(ratio=4), LayerScale(0.5), LayerNormalization(),
        SqueezeExcite(ratio=2), Conv2D(4, 1), Reshape((25, 4)), SqueezeExcite(ratio=2)), [(5, 5, 8)]),
}


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layers_match_onnxruntime(case, opset):
    model, shapes = CASES[case]()
    assert_exports_equal(model, shapes, opset=opset)


def test_the_cases_cover_every_built_in_layer():
    built_in = {get_layer_class(name).registry_name for name in registered_layers()
                if get_layer_class(name).__module__.startswith("convkit.")} - {"InputLayer"}
    covered = set()
    for make in CASES.values():
        model, _ = make()
        for layer in model.layers:
            covered.add(layer.registry_name)
            if isinstance(layer, DropConnect):
                covered.add(layer.layer.registry_name)
    assert built_in - covered == set()
    assert built_in <= set(export.registered_converters())


def test_flatten_keeps_convkits_channels_last_order():
    """A conv stack's (H, W, C) map flattened in convkit's order: the Dense rows line up only if the export
    flattens the channels-last value (a channels-first flatten would permute them)."""
    model = seq((3, 5, 4), Conv2D(4, 1), Flatten(), Dense(3))
    randomize_state(model)
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 4)).astype(np.float32)
    (got,) = run_onnx(export.onnx_bytes(model, (3, 5, 4)), [x])
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-5)
    # The test can fail: the same weights read in channels-first order give a different answer.
    channels_first_flat = model.layers[0](x).transpose(0, 3, 1, 2).reshape(2, -1)
    wrong = channels_first_flat @ model.layers[-1].kernel.value + model.layers[-1].bias.value
    assert np.abs(wrong - got).max() > 1e-2
    # Inside the graph the conv ran channels-first: exactly one Transpose back before the Flatten.
    graph = onnx.load_from_string(export.onnx_bytes(model, (3, 5, 4))).graph
    ops = [n.op_type for n in graph.node]
    assert ops.index("Transpose", ops.index("Conv")) < ops.index("Flatten")


def test_a_channels_first_stack_keeps_one_transpose_at_each_end():
    model = models.resnet_cifar(depth=8, input_shape=(8, 8, 3), classes=4)
    graph = onnx.load_from_string(export.onnx_bytes(model, (8, 8, 3))).graph
    assert [n.op_type for n in graph.node].count("Transpose") == 1   # GlobalAveragePool -> Flatten leaves (N, C)
    assert graph.node[0].op_type == "Transpose"
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["predictions"]


# ---- files, options and errors --------------------------------------------------------------------------------

def test_to_onnx_writes_a_loadable_file_and_replaces_it(tmp_path):
    model = models.lenet5_modern(input_shape=(8, 8, 1))
    path = tmp_path / "lenet.onnx"
    path.write_bytes(b"old")
    export.to_onnx(model, path, (8, 8, 1))
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded)
    assert loaded.opset_import[0].version == 17
    assert [d.dim_param for d in loaded.graph.input[0].type.tensor_type.shape.dim][:1] == ["N"]
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype(np.float32)
    (got,) = run_onnx(path.read_bytes(), [x])
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["lenet.onnx"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    model = models.lenet5_modern(input_shape=(8, 8, 1))
    path = tmp_path / "lenet.onnx"
    path.write_bytes(b"previous")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="could not save ONNX model .*lenet.onnx.*No space left"):
        export.to_onnx(model, path, (8, 8, 1))
    assert path.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == ["lenet.onnx"]


def test_builds_an_unbuilt_sequential_for_the_input_shape():
    fresh = Sequential([Conv2D(2, 3), Flatten(), Dense(3)])
    data = export.onnx_bytes(fresh, (6, 6, 1))
    assert fresh.built and fresh.layers[-1].kernel.shape == (32, 3)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(data, [x])[0], fresh(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset, match", [(16, "opset must be an int from 17"), (10**6, "opset"),
                                          (17.0, "opset"), (True, "opset")])
def test_bad_opset_raises(opset, match):
    with pytest.raises(ValueError, match=match):
        export.onnx_bytes(models.lenet1(), (28, 28, 1), opset=opset)


def test_an_input_shape_other_than_the_models_raises():
    with pytest.raises(ValueError, match=r"input_shape \(32, 32, 1\) does not match the model's input shape"):
        export.onnx_bytes(models.lenet1(), (32, 32, 1))
    with pytest.raises(ValueError, match="input_shape must be a tuple of positive ints"):
        export.onnx_bytes(models.lenet1(), (28, -1, 1))
    with pytest.raises(TypeError, match="model must be a convkit Sequential or Model"):
        export.onnx_bytes(Dense(3), (4,))


@register_layer(name="ExportTestOffset")
class _Offset(Layer):
    """A plugin-style layer: y = x + 1."""

    def forward(self, x, training=False):
        return x + 1


def test_a_layer_without_converter_raises_naming_its_class_and_plugins_can_add_one():
    model = seq((4,), Dense(3), _Offset(), Dense(2))
    with pytest.raises(NotImplementedError, match="no ONNX converter for layer .* of class _Offset .*ExportTestOffset"):
        export.onnx_bytes(model, (4,))

    @export.register_converter("ExportTestOffset")
    def offset(layer, x, graph):
        one = graph.scalar(1.0, f"{layer.name}_one")
        return export.Tensor(graph.node("Add", [x.name, one], layer.name), x.shape, x.layout)

    assert_exports_equal(model, [(4,)])


def test_register_converter_takes_layer_names():
    with pytest.raises(TypeError, match="layer names"):
        export.register_converter()
    with pytest.raises(TypeError, match="layer names"):
        export.register_converter(Dense)


def test_without_onnx_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "convkit\[onnx\]"'):
        export.onnx_bytes(models.lenet1(), (28, 28, 1))


def test_float64_models_export_as_float32():
    model = seq((4, 4, 2), Conv2D(3, 3, padding=1, dtype="float64"), Flatten(dtype="float64"),
                Dense(2, dtype="float64"))
    randomize_state(model)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2))
    (got,) = run_onnx(export.onnx_bytes(model, (4, 4, 2)), [x.astype(np.float32)])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-5)


def test_the_interop_benchmark_runs_quick():
    """benchmarks/bench_interop.py (tiny inputs) runs and reports matching outputs."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_interop.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--json", "--threads", "1", "--models", "mobilenet"],
                          capture_output=True, text=True, timeout=600, cwd=script.parents[1] / "tests")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert row["model"] == "mobilenet" and row["MiB"] > 10 and float(row["max rel diff"]) < 1e-4
