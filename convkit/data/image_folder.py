"""An image-folder tree: root/<class name>/<image files>, one folder per class (needs Pillow)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def image_folder_classes(root) -> List[str]:
    """The class names of an image-folder tree: its subfolders, sorted; label i is classes[i]."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class subfolders (expected root/<class>/<images>)")
    return classes


def load_image_folder(root, size: Optional[Tuple[int, int]] = None, mode: str = "RGB") -> Tuple[np.ndarray, np.ndarray]:
    """Every image under root/<class>/ (files with an image suffix, sorted), converted to `mode` ('RGB' or
    'L') and, when `size` = (height, width) is given, resized bilinearly to it.

    Returns x (N, H, W, C) uint8 (C = 3 for RGB, 1 for L) and y (N,) int64, the index of each image's
    class in image_folder_classes(root). Without `size`, all images must have the same size."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('load_image_folder needs Pillow: pip install "convkit[images]"') from None
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    images, labels = [], []
    for label, name in enumerate(image_folder_classes(root)):
        for path in sorted((Path(root) / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as im:
                    im = im.convert(mode)
                    if size is not None:
                        im = im.resize((size[1], size[0]), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
            except OSError as e:
                raise ValueError(f"{path}: not a readable image ({e})") from e
            if images and arr.shape != images[0].shape:
                raise ValueError(f"{path}: size {arr.shape[:2]} differs from the first image's "
                                 f"{images[0].shape[:2]}; pass size=(height, width) to resize")
            images.append(arr)
            labels.append(label)
    if not images:
        raise ValueError(f"{root}: no image files in the class folders")
    x = np.stack(images)
    return (x[..., None] if x.ndim == 3 else x), np.array(labels, dtype=np.int64)
