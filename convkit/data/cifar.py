"""CIFAR-10 and CIFAR-100: the binary batches, and the python (pickled) batches read without running code."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Tuple

import numpy as np

from .fetch import download as download_file

_IMAGE_BYTES = 32 * 32 * 3
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as published on the CIFAR page

_BINARY = {  # dataset -> folder, label bytes per record, files per split
    "cifar10": ("cifar-10-batches-bin", 1,
                {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}),
    "cifar100": ("cifar-100-binary", 2, {"train": ["train.bin"], "test": ["test.bin"]}),
}
_PYTHON = {
    "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}),
}


def read_cifar_binary(path, label_bytes: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """One binary batch: records of `label_bytes` label bytes (CIFAR-10: 1; CIFAR-100: 2, coarse then fine)
    followed by a 32x32 RGB image stored channel-major. Returns x (N, 32, 32, 3) uint8 and the labels
    (N, label_bytes) int64."""
    path = Path(path)
    data = np.frombuffer(path.read_bytes(), np.uint8)
    record = label_bytes + _IMAGE_BYTES
    if data.size == 0 or data.size % record:
        raise ValueError(f"{path}: {data.size} bytes is not a whole number of {record}-byte CIFAR records "
                         f"(truncated or not a CIFAR{'-100' if label_bytes == 2 else '-10'} binary batch)")
    records = data.reshape(-1, record)
    x = records[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), records[:, :label_bytes].astype(np.int64)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickling runs whatever callables a file names. The CIFAR python batches are dicts of bytes,
    lists, ints and NumPy arrays, so the only callables allowed are NumPy's array reconstruction helpers
    (and codecs.encode, which Python 3 uses for bytes at pickle protocol 2); anything else raises
    pickle.UnpicklingError instead of running."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: CIFAR batches contain plain data only")


def read_cifar_python(path) -> dict:
    """One python-format batch as the dict it pickles (bytes keys such as b'data', b'labels'), read with an
    unpickler that only reconstructs NumPy arrays (see _ArrayOnlyUnpickler)."""
    path = Path(path)
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a CIFAR python batch ({e})") from e
    if not isinstance(batch, dict) or b"data" not in batch:
        raise ValueError(f"{path}: not a CIFAR python batch (no b'data' entry)")
    return batch


def _python_batch(path: Path, label_keys) -> Tuple[np.ndarray, np.ndarray]:
    batch = read_cifar_python(path)
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
        raise ValueError(f"{path}: b'data' must be uint8 (N, {_IMAGE_BYTES}), got {data.dtype} {data.shape}")
    try:
        labels = np.stack([np.asarray(batch[k], dtype=np.int64) for k in label_keys], axis=1)
    except KeyError as e:
        raise ValueError(f"{path}: missing the labels entry {e}") from None
    if labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def _load(root, split: str, dataset: str) -> Tuple[np.ndarray, np.ndarray]:
    """x and every label column: CIFAR-10 (N, 1); CIFAR-100 (N, 2) = coarse, fine."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    folder, label_bytes, files = _BINARY[dataset]
    for base in (root / folder, root):
        if all((base / f).is_file() for f in files[split]):
            parts = [read_cifar_binary(base / f, label_bytes) for f in files[split]]
            break
    else:
        folder, py_files = _PYTHON[dataset]
        keys = [b"labels"] if dataset == "cifar10" else [b"coarse_labels", b"fine_labels"]
        for base in (root / folder, root):
            if all((base / f).is_file() for f in py_files[split]):
                parts = [_python_batch(base / f, keys) for f in py_files[split]]
                break
        else:
            raise FileNotFoundError(
                f"no {dataset} {split} batches in {root} (looked for {_BINARY[dataset][0]}/{files[split][0]} "
                f"and {folder}/{py_files[split][0]})")
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    limit = 10 if dataset == "cifar10" else np.array([20, 100])
    if np.any(y >= limit):
        raise ValueError(f"{root}: {dataset} labels out of range (max {y.max(axis=0)})")
    return x, y


def load_cifar10(root, split: str = "train", download: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from `root`: the binary batches (cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin)
    or the python batches (cifar-10-batches-py/...), in `root` itself or in that subfolder.

    Returns x (N, 32, 32, 3) uint8 and y (N,) int64 (N = 50000 train, 10000 test). `download=True`
    fetches and unpacks the binary archive (MD5-checked) when the batches are missing."""
    root = Path(root)
    if download and not (root / _BINARY["cifar10"][0]).is_dir():
        archive = download_file(_CIFAR10_URL, root / "cifar-10-binary.tar.gz", checksum=_CIFAR10_MD5, algorithm="md5")
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("cifar-10-batches-bin/")
                       and ".." not in Path(m.name).parts]
            # Regular files under the batch folder only; tarfile's 'data' filter too where Python has it.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, members=members, **safe)
    x, y = _load(root, split, "cifar10")
    return x, y[:, 0]


def load_cifar100(root, split: str = "train", label_mode: str = "fine") -> Tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 from `root`: binary (cifar-100-binary/train.bin, test.bin) or python (cifar-100-python/train,
    test). Returns x (N, 32, 32, 3) uint8 and y int64: (N,) fine (100 classes) or coarse (20 superclasses)
    labels, or (N, 2) = (coarse, fine) with label_mode='both'."""
    columns = {"coarse": 0, "fine": 1, "both": slice(None)}
    if label_mode not in columns:
        raise ValueError(f"label_mode must be 'fine', 'coarse' or 'both', got {label_mode!r}")
    x, y = _load(root, split, "cifar100")
    return x, np.ascontiguousarray(y[:, columns[label_mode]])

