"""convkit.data: loaders on small generated files of every format, downloads without network, DataLoader."""
import gc
import gzip
import hashlib
import io
import pickle
import struct
import sys
import tarfile
import threading
import time
import urllib.error

import numpy as np
import pytest

from convkit import data
from convkit.data import cifar, fetch, mnist

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------------------ IDX
def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file, written from the format's description: 0, 0, type code, ndim, big-endian dims, data."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_mnist(root, split, n, gz, h=28, w=28):
    images = RNG.integers(0, 256, (n, h, w), dtype=np.uint8)
    labels = RNG.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        raw = idx_bytes(arr)
        (root / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    return images, labels


@pytest.mark.parametrize("arr", [
    RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8), np.arange(-6, 6, dtype=np.int16).reshape(3, 4),
    np.array([1, -70000, 3], np.int32), RNG.random((2, 3)).astype(np.float32), RNG.random(4), np.zeros((0, 2), np.int8),
])
def test_read_idx_round_trips_every_type(tmp_path, arr):
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr))
    out = data.read_idx(tmp_path / "a.idx")
    assert out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("loader", [data.load_mnist, data.load_fashion_mnist])
def test_load_mnist_from_gz_and_raw(tmp_path, gz, loader):
    images, labels = write_mnist(tmp_path, "train", 7, gz)
    test_images, test_labels = write_mnist(tmp_path, "test", 3, gz)
    x, y = loader(tmp_path)
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], images)
    np.testing.assert_array_equal(y, labels)
    x, y = loader(tmp_path, split="test")
    np.testing.assert_array_equal(x[..., 0], test_images)
    np.testing.assert_array_equal(y, test_labels)


def test_missing_mnist_files_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_mnist(tmp_path, split="validation")


def corrupt_idx_cases():
    good = idx_bytes(np.zeros((4, 3, 3), np.uint8))
    return {
        "bad magic": (b"\x01\x02" + good[2:], "not an IDX file"),
        "bad type": (good[:2] + b"\x07" + good[3:], "type code 0x07"),
        "truncated": (good[:-5], "truncated"),
        "trailing": (good + b"\x00", "trailing bytes"),
        "short header": (good[:6], "header"),
        "empty": (b"", "not an IDX file"),
    }


@pytest.mark.parametrize("case", sorted(corrupt_idx_cases()))
@pytest.mark.parametrize("gz", [True, False])
def test_corrupt_idx_files_raise_naming_the_file(tmp_path, case, gz):
    content, message = corrupt_idx_cases()[case]
    path = tmp_path / ("f.idx.gz" if gz else "f.idx")
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_raises_naming_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 3, 3), np.uint8)))[:-10])
    with pytest.raises(ValueError, match="gzip") as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_mnist_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, "train", 5, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="expected 5 labels"):
        data.load_mnist(tmp_path)


# ---------------------------------------------------------------------------------------------- CIFAR
def cifar_records(n, label_columns):
    """Images (N, 32, 32, 3) and labels, and the binary records: labels, then R, G, B planes row-major."""
    x = RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.stack([RNG.integers(0, hi, n) for hi in label_columns], axis=1).astype(np.uint8)
    planes = x.transpose(0, 3, 1, 2).reshape(n, -1)
    return x, labels, np.concatenate([labels, planes], axis=1).tobytes()


def test_cifar10_binary_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        x, y, raw = cifar_records(i, [10])
        (folder / f"data_batch_{i}.bin").write_bytes(raw)
        xs.append(x)
        ys.append(y[:, 0])
    x_test, y_test, raw = cifar_records(4, [10])
    (folder / "test_batch.bin").write_bytes(raw)
    x, y = data.load_cifar10(tmp_path)
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64 and y.shape == (15,)
    np.testing.assert_array_equal(x, np.concatenate(xs))
    np.testing.assert_array_equal(y, np.concatenate(ys))
    x, y = data.load_cifar10(folder, split="test")  # the batch folder itself works too
    np.testing.assert_array_equal(x, x_test)
    np.testing.assert_array_equal(y, y_test[:, 0])


def test_cifar100_binary_coarse_and_fine(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    x_train, labels, raw = cifar_records(6, [20, 100])
    (folder / "train.bin").write_bytes(raw)
    (folder / "test.bin").write_bytes(cifar_records(2, [20, 100])[2])
    x, fine = data.load_cifar100(tmp_path)
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(fine, labels[:, 1])
    np.testing.assert_array_equal(data.load_cifar100(tmp_path, label_mode="coarse")[1], labels[:, 0])
    np.testing.assert_array_equal(data.load_cifar100(tmp_path, label_mode="both")[1], labels)
    assert data.load_cifar100(tmp_path, split="test")[0].shape == (2, 32, 32, 3)


def test_truncated_cifar_batch(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(cifar_records(2, [10])[2][:-1])
    with pytest.raises(ValueError, match="whole number of 3073-byte") as info:
        data.read_cifar_binary(tmp_path / "data_batch_1.bin")
    assert "data_batch_1.bin" in str(info.value)


def test_cifar_labels_out_of_range(tmp_path):
    x, y, _ = cifar_records(2, [10])
    y[0] = 11
    (tmp_path / "test_batch.bin").write_bytes(np.concatenate([y, x.transpose(0, 3, 1, 2).reshape(2, -1)], 1).tobytes())
    with pytest.raises(ValueError, match="out of range"):
        data.load_cifar10(tmp_path, split="test")


def write_python_batch(path, x, labels: dict, protocol):
    batch = {b"batch_label": b"testing batch", b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
             b"filenames": [b"a.png"] * len(x), **labels}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])  # the originals are protocol 2
def test_cifar_python_batches(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        x = RNG.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        y = list(RNG.integers(0, 10, 2).tolist())
        write_python_batch(folder / f"data_batch_{i}", x, {b"labels": y}, protocol)
        xs.append(x)
        ys += y
    x, y = data.load_cifar10(tmp_path)
    np.testing.assert_array_equal(x, np.concatenate(xs))
    np.testing.assert_array_equal(y, ys)

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x100 = RNG.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_python_batch(folder / "test", x100, {b"coarse_labels": [1, 2, 19], b"fine_labels": [5, 99, 0]}, protocol)
    x, y = data.load_cifar100(tmp_path, split="test", label_mode="both")
    np.testing.assert_array_equal(x, x100)
    np.testing.assert_array_equal(y, [[1, 5], [2, 99], [19, 0]])


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_cifar_python_reader_refuses_to_run_code(tmp_path):
    marker = tmp_path / "was_run"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsCode(marker), b"labels": [0]}))
    with pytest.raises(ValueError, match="refusing to load builtins.exec"):
        data.read_cifar_python(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the same file through plain pickle does run it: the test has teeth
    assert marker.exists()


def test_cifar_python_batch_without_data(tmp_path):
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(ValueError, match="no b'data'"):
        data.read_cifar_python(tmp_path / "test_batch")
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-bin"):
        data.load_cifar10(tmp_path / "nowhere")


# --------------------------------------------------------------------------------- image folder, npz
def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    expected = {}
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for k in range(2):
            img = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / name / f"{k}.png")
            expected[(name, k)] = img
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    assert data.image_folder_classes(tmp_path) == ["cat", "dog"]
    x, y = data.load_image_folder(tmp_path)
    assert x.shape == (4, 5, 6, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    np.testing.assert_array_equal(x[3], expected[("dog", 1)])
    grey, _ = data.load_image_folder(tmp_path, size=(4, 4), mode="L")
    assert grey.shape == (4, 4, 4, 1)
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(tmp_path / "cat" / "2.png")
    with pytest.raises(ValueError, match="size=\\(height, width\\)"):
        data.load_image_folder(tmp_path)


def test_image_folder_without_pillow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "convkit\[images\]"'):
        data.load_image_folder(tmp_path)


def test_npz_and_from_arrays(tmp_path):
    x = RNG.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(4, dtype=np.int32))
    xs, ys = data.load_npz(tmp_path / "d.npz")
    assert xs.shape == (4, 3, 3, 1) and ys.dtype == np.int64
    np.testing.assert_array_equal(xs[..., 0], x)
    with pytest.raises(ValueError, match="'images'"):
        data.load_npz(tmp_path / "d.npz", x_key="images")
    with pytest.raises(ValueError, match="y must be 4 integer labels"):
        data.from_arrays(x, np.arange(3))
    with pytest.raises(TypeError, match="int32"):
        data.from_arrays(x.astype(np.int32), np.arange(4))
    assert data.from_arrays(x.astype(np.float64), np.arange(4))[0].dtype == np.float32


# --------------------------------------------------------------------------------------------- digits
def test_load_digits_split():
    pytest.importorskip("sklearn")
    x, y = data.load_digits("train")
    xt, yt = data.load_digits("test")
    xa, ya = data.load_digits("all")
    assert x.shape == (1438, 8, 8, 1) and xt.shape == (359, 8, 8, 1) and xa.shape == (1797, 8, 8, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.min() == 0.0 and x.max() == 1.0
    # Stratified: every class's share in test is 20% of its count, rounded.
    for label in range(10):
        assert (yt == label).sum() == round(0.2 * (ya == label).sum())
    # Disjoint and complete: the rows of train and test are the rows of all.
    rows = {r.tobytes() + bytes([l]) for r, l in zip(xa, ya)}
    assert {r.tobytes() + bytes([l]) for r, l in zip(np.concatenate([x, xt]), np.concatenate([y, yt]))} == rows
    np.testing.assert_array_equal(data.load_digits("test")[1], yt)  # deterministic
    assert not np.array_equal(data.load_digits("test", seed=1)[0], xt)


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "convkit\[demo\]"'):
        data.load_digits()


# ------------------------------------------------------------------------------------------- download
class _FakeResponse(io.BytesIO):
    pass


def serve(monkeypatch, files: dict):
    requested = []

    def opener(url, timeout):
        requested.append(url)
        name = url.rsplit("/", 1)[1]
        if name not in files:
            raise urllib.error.URLError("no network")
        return _FakeResponse(files[name])

    monkeypatch.setattr(fetch, "_open_url", opener)
    return requested


def test_download_verifies_and_writes_atomically(tmp_path, monkeypatch):
    payload = b"convkit" * 1000
    serve(monkeypatch, {"f.bin": payload})
    target = tmp_path / "sub" / "f.bin"
    data.download("https://example.org/f.bin", target, checksum=hashlib.sha256(payload).hexdigest())
    assert target.read_bytes() == payload
    with pytest.raises(ValueError, match="checksum"):
        data.download("https://example.org/f.bin", tmp_path / "g.bin", checksum="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # no partial file left behind
    with pytest.raises(ConnectionError, match="offline"):
        data.download("https://example.org/missing.bin", tmp_path / "m.bin", checksum="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_download_skips_a_verified_file_and_reads_file_urls(tmp_path, monkeypatch):
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    md5 = hashlib.md5(b"abc").hexdigest()
    target = tmp_path / "copy.bin"
    data.download(source.as_uri(), target, checksum=md5, algorithm="md5")  # the real opener, file:// URL
    assert target.read_bytes() == b"abc"
    requested = serve(monkeypatch, {})
    data.download("https://example.org/copy.bin", target, checksum=md5, algorithm="md5")
    assert requested == []


def test_load_mnist_download(tmp_path, monkeypatch):
    files = {}
    for stem, arr in (("train-images-idx3-ubyte", np.ones((2, 28, 28), np.uint8)),
                      ("train-labels-idx1-ubyte", np.array([3, 4], np.uint8))):
        files[stem + ".gz"] = gzip.compress(idx_bytes(arr))
    base, _ = mnist._SOURCES["mnist"]
    monkeypatch.setitem(mnist._SOURCES, "mnist", (base, {k: hashlib.md5(v).hexdigest() for k, v in files.items()}))
    requested = serve(monkeypatch, files)
    x, y = data.load_mnist(tmp_path / "mnist", download=True)
    assert x.shape == (2, 28, 28, 1) and list(y) == [3, 4]
    assert all(url.startswith(base) for url in requested) and len(requested) == 2


def test_load_cifar10_download_and_unpack(tmp_path, monkeypatch):
    archive = io.BytesIO()
    batches = {f"data_batch_{i}.bin": cifar_records(1, [10])[2] for i in range(1, 6)}
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, raw in batches.items():
            info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    payload = archive.getvalue()
    monkeypatch.setattr(cifar, "_CIFAR10_MD5", hashlib.md5(payload).hexdigest())
    serve(monkeypatch, {"cifar-10-binary.tar.gz": payload})
    x, y = data.load_cifar10(tmp_path, download=True)
    assert x.shape == (5, 32, 32, 3)


def test_mnist_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    serve(monkeypatch, {})
    with pytest.raises(ConnectionError, match="offline"):
        data.load_mnist(tmp_path, download=True)


# ----------------------------------------------------------------------------------------- DataLoader
def small_dataset(n=10):
    return RNG.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8), np.arange(n)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_order_batches_and_conversion(prefetch):
    x, y = small_dataset()
    loader = data.DataLoader(x, y, 4, shuffle=False, prefetch=prefetch)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    xb, _ = batches[0]
    assert xb.dtype == np.float32
    np.testing.assert_allclose(xb, x[:4] / 255.0, rtol=1e-7)
    dropped = data.DataLoader(x, y, 4, drop_last=True, prefetch=prefetch)
    assert len(dropped) == 2 and [len(b[1]) for b in dropped] == [4, 4]


def test_loader_shuffle_is_reproducible_per_epoch():
    x, y = small_dataset(50)
    loader = data.DataLoader(x, y, 8, seed=3)
    epoch0 = np.concatenate([b[1] for b in loader])
    epoch1 = np.concatenate([b[1] for b in loader])  # the next iteration is the next epoch
    assert sorted(epoch0) == list(range(50)) and not np.array_equal(epoch0, epoch1)
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in loader]), epoch0)
    again = data.DataLoader(x, y, 8, seed=3)
    again.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), epoch1)
    other = data.DataLoader(x, y, 8, seed=4)
    assert not np.array_equal(np.concatenate([b[1] for b in other]), epoch0)


def test_loader_augmentation_reproducible_with_and_without_prefetch():
    from convkit.data import augmentations as A

    x, y = small_dataset(20)
    pipeline = A.Compose([A.RandomFlip(), A.RandomCrop(4, padding=1)])
    runs = []
    for prefetch in (0, 1, 3):
        loader = data.DataLoader(x, y, 6, seed=1, augment=pipeline, prefetch=prefetch)
        runs.append([b[0] for b in loader])
    for run in runs[1:]:
        for a, b in zip(run, runs[0]):
            np.testing.assert_array_equal(a, b)
    plain = [b[0] for b in data.DataLoader(x, y, 6, seed=1)]
    assert any(not np.array_equal(a, b) for a, b in zip(plain, runs[0]))


def test_loader_mean_std():
    x, y = small_dataset()
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    xb, _ = next(iter(data.DataLoader(x, y, 10, shuffle=False, mean=mean, std=std)))
    np.testing.assert_allclose(xb, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-6)
    floats = x.astype(np.float64) / 255
    xf, _ = next(iter(data.DataLoader(floats, y, 10, shuffle=False)))  # floating input is not rescaled
    np.testing.assert_allclose(xf, floats, rtol=1e-7)
    from convkit.data import augmentations as A

    flipped, _ = next(iter(data.DataLoader(floats, y, 10, shuffle=False, augment=A.RandomFlip(p=1.0))))
    np.testing.assert_allclose(flipped, floats[:, :, ::-1], rtol=1e-7)  # float64 reaches the kernels as float32


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "convkit-prefetch"]


def test_loader_early_stop_leaves_no_thread():
    x, y = small_dataset(200)
    for _ in range(3):
        for xb, yb in data.DataLoader(x, y, 2, prefetch=2):
            break
    gc.collect()
    deadline = time.monotonic() + 5
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert prefetch_threads() == []


def test_loader_reraises_errors_from_the_thread():
    x, y = small_dataset(20)
    seen = []

    def failing(batch, rng):
        seen.append(len(batch))
        if len(seen) == 2:
            raise RuntimeError("augmentation broke")
        return batch

    iterator = iter(data.DataLoader(x, y, 5, augment=failing, prefetch=2))
    next(iterator)
    with pytest.raises(RuntimeError, match="augmentation broke"):
        next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)
    assert prefetch_threads() == []


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(x=np.zeros((4, 3, 3), np.uint8)), ValueError, "x must have shape"),
    (dict(x=np.zeros((4, 3, 3, 1), np.int32)), TypeError, "int32"),
    (dict(y=np.arange(3)), ValueError, "one row per image"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(prefetch=-1), ValueError, "prefetch"),
    (dict(augment=3), TypeError, "augment"),
    (dict(mean=[0.1, 0.2]), ValueError, "mean"),
    (dict(std=[0.0]), ValueError, "std"),
])
def test_loader_bad_arguments(kwargs, error, match):
    args = dict(x=np.zeros((4, 3, 3, 1), np.uint8), y=np.arange(4), batch_size=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        data.DataLoader(args.pop("x"), args.pop("y"), **args)
