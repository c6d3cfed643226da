"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw)."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Tuple

import numpy as np

from .fetch import download as download_file

# IDX type codes (third byte of the magic number) -> big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# Mirrors and MD5 checksums as published (torchvision lists the same files).
_SOURCES = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
}


def read_idx(path) -> np.ndarray:
    """The array stored in one IDX file (`.gz` is decompressed), in native byte order.

    Raises ValueError naming the file when the magic number, the type code, the dimensions or the size
    are wrong (a truncated download, for instance)."""
    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:  # gzip raises these on a truncated or corrupt stream
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable gzip file ({e})") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, expected 0000tttt)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header declares {ndim} dimensions but the file has {len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(f"{path}: {what}: dimensions {shape} need {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{stem}(.gz) not found in {root}; pass download=True or put the files there")


def _load(root, split: str, download_files: bool, source: str) -> Tuple[np.ndarray, np.ndarray]:
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if download_files:
        base, checksums = _SOURCES[source]
        for stem in _FILES[split]:
            name = stem + ".gz"
            download_file(base + name, root / name, checksum=checksums[name], algorithm="md5")
    images_path, labels_path = (_find(root, stem) for stem in _FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_path}: expected {images.shape[0]} labels (one per image), got shape {labels.shape}")
    return images[..., None], labels.astype(np.int64)


def load_mnist(root, split: str = "train", download: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """MNIST from the IDX files in `root` (train-images-idx3-ubyte[.gz], ..., t10k-labels-idx1-ubyte[.gz]).

    Returns x (N, 28, 28, 1) uint8 and y (N,) int64 (N = 60000 train, 10000 test). `download=True`
    fetches the missing files (MD5-checked)."""
    return _load(root, split, download, "mnist")


def load_fashion_mnist(root, split: str = "train", download: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: the same files and shapes as MNIST (see load_mnist)."""
    return _load(root, split, download, "fashion-mnist")
