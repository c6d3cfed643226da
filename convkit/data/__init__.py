"""Datasets, batching and augmentation (channels-last images: x (N, H, W, C) uint8, y (N,) int64).

- loaders: load_digits (the embedded default, needs scikit-learn), load_mnist, load_fashion_mnist,
  load_cifar10, load_cifar100, load_image_folder (needs Pillow), load_npz, from_arrays; the single-file
  readers read_idx, read_cifar_binary, read_cifar_python; download (checksum-verified, atomic);
- DataLoader: shuffled, augmented, float32 mini-batches prepared by a background thread;
- augmentations: Cython kernels and the Compose pipeline.
"""
from . import augmentations
from .arrays import from_arrays, load_npz
from .cifar import load_cifar10, load_cifar100, read_cifar_binary, read_cifar_python
from .digits import load_digits
from .fetch import download
from .image_folder import image_folder_classes, load_image_folder
from .loader import DataLoader
from .mnist import load_fashion_mnist, load_mnist, read_idx

__all__ = [
    "DataLoader", "augmentations", "download", "from_arrays", "image_folder_classes", "load_cifar10",
    "load_cifar100", "load_digits", "load_fashion_mnist", "load_image_folder", "load_mnist", "load_npz",
    "read_cifar_binary", "read_cifar_python", "read_idx",
]
