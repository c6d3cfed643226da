"""convkit.interop: PyTorch state dicts (dicts, .pt, .safetensors) and Keras weights into convkit networks.

The PyTorch side is written here with torchvision's module and key names (torchvision itself is not needed):
random weights and BatchNorm statistics, transferred, and the eval-mode outputs compared."""
import json
import os
import struct

import numpy as np
import pytest

import convkit
from convkit import Sequential, interop, models
from convkit._checkpoint_file import CheckpointError
from convkit.layers import (
    BatchNormalization, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, DropConnect, Dropout, Flatten,
    GlobalAveragePooling, LayerNormalization, MaxPooling2D, ReLU,
)


# ---- safetensors, read with NumPy alone ----------------------------------------------------------------------

def safetensors_bytes(header, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the format's 8-byte alignment
    return struct.pack("<Q", len(text)) + text + data


def test_read_safetensors_reads_every_dtype(tmp_path):
    arrays = {"f32": np.arange(6, dtype="<f4").reshape(2, 3), "f64": np.array([1.5, -2.0]), "i64": np.array([7]),
              "u8": np.array([1, 255], np.uint8), "empty": np.zeros((0, 3), np.float32)}
    header, data = {"__metadata__": {"format": "pt"}}, b""
    codes = {"f32": "F32", "f64": "F64", "i64": "I64", "u8": "U8", "empty": "F32"}
    for name, array in arrays.items():
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[name], "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    bf16 = np.array([1.0, -3.5, 0.15625], np.float32)  # exactly representable in bfloat16
    raw = (bf16.view(np.uint32) >> 16).astype("<u2").tobytes()
    header["bf16"] = {"dtype": "BF16", "shape": [3], "data_offsets": [len(data), len(data) + len(raw)]}
    path = tmp_path / "t.safetensors"
    path.write_bytes(safetensors_bytes(header, data + raw))
    loaded = interop.read_safetensors(path)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    np.testing.assert_array_equal(loaded["bf16"], bf16)


def test_read_safetensors_agrees_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {"a.weight": np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32),
              "b": np.arange(5, dtype=np.int32)}
    st.save_file(arrays, str(tmp_path / "w.safetensors"))
    loaded = interop.read_safetensors(tmp_path / "w.safetensors")
    assert sorted(loaded) == sorted(arrays)
    for name in arrays:
        np.testing.assert_array_equal(loaded[name], arrays[name])


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


MALFORMED = {
    "short": b"\x01\x02",
    "header_too_long": struct.pack("<Q", 10**6) + b"{}",
    "not_json": struct.pack("<Q", 4) + b"{{{{",
    "not_an_object": safetensors_bytes([1, 2], b""),
    "unknown_dtype": safetensors_bytes({"x": entry(dtype="F8")}, bytes(8)),
    "extra_field": safetensors_bytes({"x": {**entry(), "offset": 0}}, bytes(8)),
    "negative_shape": safetensors_bytes({"x": entry(shape=(-2,))}, bytes(8)),
    "wrong_size": safetensors_bytes({"x": entry(shape=(3,))}, bytes(8)),
    "reversed_offsets": safetensors_bytes({"x": entry(offsets=(8, 0))}, bytes(8)),
    "overlap": safetensors_bytes({"x": entry(), "y": entry(offsets=(4, 12))}, bytes(12)),
    "hole": safetensors_bytes({"x": entry(offsets=(4, 12))}, bytes(12)),
    "truncated": safetensors_bytes({"x": entry(shape=(4,), offsets=(0, 16))}, bytes(8)),
    "trailing_bytes": safetensors_bytes({"x": entry()}, bytes(12)),
    "bad_metadata": safetensors_bytes({"__metadata__": {"a": 1}}, b""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_safetensors_raise_checkpoint_error_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(MALFORMED[case])
    with pytest.raises(CheckpointError, match=f"{case}.safetensors: not a valid safetensors file"):
        interop.read_safetensors(path)


# ---- PyTorch: modules with torchvision's names -------------------------------------------------------------------

try:
    import torch
    import torchvision_like as tv
except ImportError:  # the PyTorch half is skipped
    torch = tv = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch")


def assert_same_outputs(torch_model, model, shape, seed=3, rtol=1e-4):
    x = np.random.default_rng(seed).normal(size=(2, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    got = model(x)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * max(1.0, float(np.abs(expected).max())))


@pytest.fixture(autouse=True)
def one_torch_thread():
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@needs_torch
def test_resnet18_from_a_torchvision_state_dict():
    torch_model = tv.randomize_torch(tv.TorchResNet(tv.BasicBlock, [2, 2, 2, 2], classes=7))
    model = models.resnet18(input_shape=(33, 35, 3), classes=7)
    result = interop.load_torch_state_dict(model, torch_model.state_dict())
    assert result == interop.LoadResult([], [])
    assert_same_outputs(torch_model, model, (33, 35, 3))


@needs_torch
def test_resnext50_grouped_bottlenecks_from_torchvision_names():
    torch_model = tv.randomize_torch(tv.TorchResNet(tv.Bottleneck, [3, 4, 6, 3], classes=4, groups=32,
                                                    width_per_group=4))
    model = models.resnext50_32x4d(input_shape=(16, 16, 3), classes=4)
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (16, 16, 3))


@needs_torch
def test_vgg11_from_torchvision_names():
    from convkit.models.vgg import VGG_CONFIGS
    torch_model = tv.randomize_torch(tv.TorchVGG(VGG_CONFIGS[11], classes=5))
    model = models.vgg11(input_shape=(32, 32, 3), classes=5)
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (32, 32, 3))


def vgg_style_convkit():
    return Sequential([Conv2D(5, 3, padding=1), BatchNormalization(), ReLU(), MaxPooling2D(2),
                       Conv2D(6, 3, padding=1, activation="relu"), Flatten(), Dropout(0.2),
                       Dense(10, activation="relu"), Dropout(0.5), Dense(3)], input_shape=(6, 8, 2))


@needs_torch
def test_vgg_style_net_by_order_reorders_the_flattened_dense_rows():
    torch_model = tv.randomize_torch(tv.TorchVGGStyle())
    model = vgg_style_convkit()
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (6, 8, 2))
    # The Dense after the Flatten is the one whose rows moved: a plain transpose would not do.
    plain = torch_model.classifier[0].weight.detach().numpy().T
    assert not np.allclose(model.layers[7].kernel.value, plain)
    assert sorted(model.layers[7].kernel.value.ravel()) == pytest.approx(sorted(plain.ravel()))


@needs_torch
def test_depthwise_grouped_and_transposed_convolutions_by_order():
    torch_model = tv.randomize_torch(tv.TorchDepthwiseNet())
    model = Sequential([
        Conv2D(8, 3, strides=2, padding=1, use_bias=False), BatchNormalization(), ReLU(max_value=6),
        DepthwiseConv2D(3, padding=1, depth_multiplier=2, use_bias=False), BatchNormalization(), ReLU(max_value=6),
        Conv2D(12, 1), BatchNormalization(), ReLU(),
        Conv2DTranspose(6, 3, strides=2, padding=1, output_padding=1, groups=2), GlobalAveragePooling(),
        DropConnect(Dense(4), 0.5)], input_shape=(10, 12, 3))
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (10, 12, 3))


@needs_torch
def test_densenet121_from_torchvision_names():
    torch_model = tv.randomize_torch(tv.TorchDenseNet())
    model = models.densenet121(input_shape=(32, 32, 3), classes=6)
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (32, 32, 3), rtol=2e-4)


@needs_torch
def test_convnext_tiny_from_torchvision_names():
    torch_model = tv.randomize_torch(tv.TorchConvNeXt())
    model = models.convnext_tiny(input_shape=(32, 32, 3), classes=5)
    interop.load_torch_state_dict(model, torch_model.state_dict())
    assert_same_outputs(torch_model, model, (32, 32, 3), rtol=2e-4)


# ---- files, strictness, errors ---------------------------------------------------------------------------------

@needs_torch
def test_pt_files_load_like_the_dict(tmp_path):
    state = tv.randomize_torch(tv.TorchVGGStyle()).state_dict()
    torch.save(state, tmp_path / "w.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "wrapped.pth")
    reference = vgg_style_convkit()
    interop.load_torch_state_dict(reference, state)
    for name in ("w.pt", "wrapped.pth"):
        model = vgg_style_convkit()
        interop.load_torch_state_dict(model, tmp_path / name)
        for p, q in zip(model.parameters(), reference.parameters()):
            np.testing.assert_array_equal(p.value, q.value)


@needs_torch
def test_safetensors_files_load_by_torchvision_names(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    torch_model = tv.randomize_torch(tv.TorchResNet(tv.BasicBlock, [2, 2, 2, 2], classes=3))
    st.save_file(torch_model.state_dict(), str(tmp_path / "resnet18.safetensors"))
    model = models.resnet18(input_shape=(8, 8, 3), classes=3)
    interop.load_torch_state_dict(model, tmp_path / "resnet18.safetensors")
    assert_same_outputs(torch_model, model, (8, 8, 3))
    # Its writer sorts the tensors: order matching would pair them wrongly, so it is refused.
    st.save_file(tv.TorchVGGStyle().state_dict(), str(tmp_path / "small.safetensors"))
    with pytest.raises(ValueError, match="keeps no tensor order"):
        interop.load_torch_state_dict(vgg_style_convkit(), tmp_path / "small.safetensors")


@needs_torch
def test_a_pt_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"weight": torch.zeros(2), "payload": tv.CodeRunningPayload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: refused by torch.load"):
        interop.load_torch_state_dict(vgg_style_convkit(), tmp_path / "evil.pt")
    assert not marker.exists()


@needs_torch
def test_strict_lists_missing_and_unexpected_keys_and_non_strict_loads_the_rest():
    torch_model = tv.randomize_torch(tv.TorchResNet(tv.BasicBlock, [2, 2, 2, 2], classes=1000))
    model = models.resnet18(input_shape=(8, 8, 3), classes=10)       # transfer learning: a new head
    state = {k: v for k, v in torch_model.state_dict().items() if not k.startswith("fc.")}
    state["extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"missing keys for \[predictions/kernel \(fc.weight\), predictions/bias "
                                         r"\(fc.bias\)\], unexpected keys \['extra.weight'\]"):
        interop.load_torch_state_dict(model, state)
    head = model.get_layer("predictions").kernel.value.copy()
    result = interop.load_torch_state_dict(model, state, strict=False)
    assert result.missing_keys == ["predictions/kernel", "predictions/bias"]
    assert result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.value, head)
    np.testing.assert_allclose(model.get_layer("stem_conv").kernel.value,
                               torch_model.conv1.weight.detach().numpy().transpose(2, 3, 1, 0))
    np.testing.assert_allclose(model.get_layer("stage4_block2_2_bn").moving_variance.value,
                               torch_model.layer4[1].bn2.running_var.numpy())


@needs_torch
def test_order_matching_names_both_sides_when_a_shape_disagrees():
    state = tv.randomize_torch(tv.TorchVGGStyle()).state_dict()
    model = Sequential([Conv2D(5, 3, padding=1), BatchNormalization(), MaxPooling2D(2), Conv2D(7, 3, padding=1),
                        Flatten(), Dense(10), Dense(3)], input_shape=(6, 8, 2))
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"key 'features.4.weight' of shape \(6, 5, 3, 3\) \(as convkit lays it "
                                         r"out: \(3, 3, 5, 6\)\) does not fit parameter '.*/kernel' of shape "
                                         r"\(3, 3, 5, 7\)"):
        interop.load_torch_state_dict(model, state)
    assert all(np.array_equal(p.value, b) for p, b in zip(model.parameters(), before))  # nothing assigned


@needs_torch
def test_order_matching_counts_must_agree_when_strict():
    state = dict(tv.randomize_torch(tv.TorchVGGStyle()).state_dict())
    del state["classifier.3.bias"]
    with pytest.raises(ValueError, match=r"in order\): missing keys for \[.*dense.*/bias\], unexpected keys \[\]"):
        interop.load_torch_state_dict(vgg_style_convkit(), state)


@needs_torch
@pytest.mark.parametrize("source, error, match", [
    (np.zeros(3), TypeError, "state_dict_or_path must be a mapping"),
    ("weights.npz", ValueError, "expected a .safetensors file or a PyTorch file"),
    ({"w": np.array(["a"])}, TypeError, r"state_dict\['w'\] must be a tensor or numeric array"),
])
def test_bad_sources_raise(source, error, match):
    with pytest.raises(error, match=match):
        interop.load_torch_state_dict(vgg_style_convkit(), source)


@needs_torch
def test_bad_model_and_strict_raise():
    with pytest.raises(TypeError, match="model must be"):
        interop.load_torch_state_dict(Dense(3), {})
    with pytest.raises(TypeError, match="strict must be True or False"):
        interop.load_torch_state_dict(vgg_style_convkit(), {}, strict=1)


# ---- Keras 3 ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("h5py")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("these tests build Keras models on the torch backend")
    return keras


def randomize_keras(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if len(weights) == 4 and i == 3
                           else (rng.normal(size=w.shape) / np.sqrt(max(1, np.prod(w.shape[:-1])))).astype(np.float32)
                           for i, w in enumerate(weights)])


def assert_keras_outputs_equal(keras_model, model, shape):
    x = np.random.default_rng(1).normal(size=(3, *shape)).astype(np.float32)
    expected = keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(model(x), expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


def test_lenet5_from_keras_weights_h5(keras, tmp_path):
    L = keras.layers
    keras_model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(120, activation="relu"),
        L.Dense(84, activation="relu"), L.Dense(10)])
    randomize_keras(keras_model)
    keras_model.save_weights(str(tmp_path / "lenet.weights.h5"))
    model = models.lenet5_modern(input_shape=(28, 28, 1))
    interop.load_keras_weights(model, tmp_path / "lenet.weights.h5")
    assert_keras_outputs_equal(keras_model, model, (28, 28, 1))


def test_conv_bn_depthwise_net_from_a_keras_file(keras, tmp_path):
    L = keras.layers
    keras_model = keras.Sequential([
        keras.Input((9, 10, 3)), L.Conv2D(8, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(),
        L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same"), L.BatchNormalization(),
        L.SeparableConv2D(6, 3, activation="relu"), L.LayerNormalization(epsilon=1e-5),
        L.GlobalAveragePooling2D(), L.Dense(3)])
    randomize_keras(keras_model)
    keras_model.save(str(tmp_path / "net.keras"))
    model = Sequential([
        Conv2D(8, 3, padding="same", use_bias=False), BatchNormalization(epsilon=1e-3), ReLU(),
        DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same"), BatchNormalization(epsilon=1e-3),
        convkit.layers.SeparableConv2D(6, 3, activation="relu"), LayerNormalization(),
        GlobalAveragePooling(), Dense(3)], input_shape=(9, 10, 3))
    interop.load_keras_weights(model, tmp_path / "net.keras")
    assert_keras_outputs_equal(keras_model, model, (9, 10, 3))


def test_keras_weights_that_do_not_fit_raise(keras, tmp_path):
    L = keras.layers
    keras_model = keras.Sequential([keras.Input((6,)), L.Dense(4), L.Dense(2)])
    keras_model.save_weights(str(tmp_path / "mlp.weights.h5"))
    before = [p.value.copy() for p in Sequential([Dense(4), Dense(3)], input_shape=(6,)).parameters()]
    wrong = Sequential([Dense(4), Dense(3)], input_shape=(6,))
    with pytest.raises(ValueError, match=r"Keras layer 'dense_1' array of shape \(4, 2\) does not fit parameter "
                                         r"'.*/kernel' of shape \(4, 3\)"):
        interop.load_keras_weights(wrong, tmp_path / "mlp.weights.h5")
    assert [p.value.shape for p in wrong.parameters()] == [b.shape for b in before]
    longer = Sequential([Dense(4), Dense(2), Dense(2)], input_shape=(6,))
    with pytest.raises(ValueError, match=r"convkit layers without Keras weights \['.* \(dense_2\)'\]"):
        interop.load_keras_weights(longer, tmp_path / "mlp.weights.h5")
    with pytest.raises(ValueError, match="expected a .weights.h5 or .keras file"):
        interop.load_keras_weights(longer, tmp_path / "mlp.npz")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="broken.keras: not a .keras file"):
        interop.load_keras_weights(longer, tmp_path / "broken.keras")
    (tmp_path / "broken.weights.h5").write_bytes(b"not HDF5")
    with pytest.raises(CheckpointError, match="broken.weights.h5: not a readable HDF5 file"):
        interop.load_keras_weights(longer, tmp_path / "broken.weights.h5")
