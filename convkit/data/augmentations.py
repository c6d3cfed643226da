"""Batch-wise data augmentation for channels-last images (N, H, W, C), uint8 or float32.

Two layers:

- functions (`flip`, `crop`, `resized_crop`, `rotate`, `warp_affine`, `color_jitter`, `lens_distortion`)
  apply given per-image parameters; they are deterministic and run the Cython kernels of
  `convkit._augment` on up to `convkit.get_num_threads()` threads, the GIL released;
- transforms (`RandomFlip`, `RandomCrop`, `RandomResizedCrop`, `RandomRotation`, `ColorJitter`,
  `RandomLensDistortion`, chained by `Compose`) draw those parameters from a `numpy.random.Generator` and
  call the functions: `Compose([...])(batch, rng)`.

Results depend only on the batch and the generator's state, never on the thread count. Every function
returns a new array of the input's dtype; uint8 results of interpolation are rounded to nearest.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence, Tuple, Union

import numpy as np

from .. import _augment
from ..runtime import get_num_threads

ImageSize = Union[int, Tuple[int, int]]
_BORDERS = {"constant": _augment.Border.BORDER_CONSTANT, "replicate": _augment.Border.BORDER_REPLICATE}
_PADDINGS = {"zeros": _augment.Border.BORDER_CONSTANT, "reflect": _augment.Border.BORDER_REFLECT}


# ----------------------------------------------------------------------------------------------- checks
def _check_batch(batch, name: str = "batch") -> np.ndarray:
    arr = np.asarray(batch)
    if arr.dtype not in (np.uint8, np.float32):
        raise TypeError(f"{name} must be a uint8 or float32 array, got dtype {arr.dtype}")
    if arr.ndim != 4 or 0 in arr.shape[1:]:
        raise ValueError(f"{name} must have shape (N, H, W, C) with H, W, C >= 1, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _per_image(values, n: int, name: str, dtype=np.float64) -> np.ndarray:
    """A scalar broadcast to (n,), or an array of n values, as a contiguous array of `dtype`."""
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be numbers, got {values!r}")
    if np.issubdtype(dtype, np.integer) and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one per image), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {values!r}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _fill_values(fill, channels: int) -> np.ndarray:
    arr = np.asarray(fill, dtype=np.float64)
    arr = np.broadcast_to(arr, (channels,)) if arr.ndim == 0 else arr
    if arr.shape != (channels,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"fill must be a finite number or one per channel ({channels}), got {fill!r}")
    return np.ascontiguousarray(arr)


def _image_size(size, name: str = "size") -> Tuple[int, int]:
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in pair):
        raise ValueError(f"{name} must be a positive int or a pair (height, width) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def _check_range(value, name: str, lowest: float) -> Tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (math.isfinite(lo) and math.isfinite(hi) and lowest <= lo <= hi):
        raise ValueError(f"{name} must be a range (low, high) with {lowest} <= low <= high, got {value!r}")
    return lo, hi


# As the pooling ops: a thread only for every 16K elements read and written; waking a team for less
# costs more than it saves (and far more when another process holds a core).
_ELEMENTS_PER_THREAD = 1 << 14


def _threads(src: np.ndarray, out: np.ndarray) -> int:
    return max(1, min(get_num_threads(), (src.size + out.size) // _ELEMENTS_PER_THREAD))


def _empty_like(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.empty((batch.shape[0], height, width, batch.shape[3]), dtype=batch.dtype)


# -------------------------------------------------------------------------------------------- functions
def flip(batch: np.ndarray, horizontal=False, vertical=False) -> np.ndarray:
    """Mirror image n left-right where `horizontal[n]`, upside down where `vertical[n]` (bools, or one bool
    for all). (N, H, W, C) -> (N, H, W, C)."""
    batch = _check_batch(batch)
    n = batch.shape[0]
    out = np.empty_like(batch)
    horizontal = _per_image(horizontal, n, "horizontal", np.uint8)
    vertical = _per_image(vertical, n, "vertical", np.uint8)
    _augment.flip(batch, horizontal, vertical, out, _threads(batch, out))
    return out


def crop(batch: np.ndarray, top, left, size: ImageSize, padding_mode: str = "zeros") -> np.ndarray:
    """out[n, i, j] = batch[n, top[n] + i, left[n] + j] for an output of `size` (h, w).

    `top`/`left` may be negative or run past the image: those pixels are zero (`padding_mode='zeros'`) or
    mirrored (`'reflect'`, edge not repeated; then the crop may reach at most H - 1 rows/W - 1 columns
    outside). (N, H, W, C) -> (N, h, w, C)."""
    batch = _check_batch(batch)
    n, height, width = batch.shape[:3]
    oh, ow = _image_size(size)
    if padding_mode not in _PADDINGS:
        raise ValueError(f"padding_mode must be one of {sorted(_PADDINGS)}, got {padding_mode!r}")
    top, left = _per_image(top, n, "top", np.int64), _per_image(left, n, "left", np.int64)
    if padding_mode == "reflect" and n and (
        top.min() < 1 - height or top.max() + oh > 2 * height - 1
        or left.min() < 1 - width or left.max() + ow > 2 * width - 1
    ):
        raise ValueError(
            f"padding_mode='reflect' reaches at most {height - 1} rows and {width - 1} columns outside a "
            f"{height}x{width} image, got top in [{top.min()}, {top.max()}], left in [{left.min()}, {left.max()}] "
            f"for a {oh}x{ow} crop"
        )
    out = _empty_like(batch, oh, ow)
    _augment.crop(batch, top, left, int(_PADDINGS[padding_mode]), out, _threads(batch, out))
    return out


def warp_affine(batch: np.ndarray, coeffs, size: ImageSize, fill=0.0, border: str = "constant") -> np.ndarray:
    """Bilinear sampling through an inverse affine map: output pixel (i, j) of image n reads
    batch[n] at (a*i + b*j + c, d*i + e*j + f), (a, b, c, d, e, f) = coeffs[n] (pixel centres at integer
    coordinates). Outside the image reads `fill` (`border='constant'`, scalar or per channel) or the
    nearest edge pixel (`'replicate'`). coeffs: (N, 6); (N, H, W, C) -> (N, h, w, C)."""
    batch = _check_batch(batch)
    oh, ow = _image_size(size)
    coeffs = np.ascontiguousarray(coeffs, dtype=np.float64)
    if coeffs.shape != (batch.shape[0], 6) or not np.all(np.isfinite(coeffs)):
        raise ValueError(f"coeffs must be finite with shape ({batch.shape[0]}, 6), got shape {coeffs.shape}")
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {sorted(_BORDERS)}, got {border!r}")
    out = _empty_like(batch, oh, ow)
    _augment.warp_affine(batch, coeffs, _fill_values(fill, batch.shape[3]), int(_BORDERS[border]), out,
                         _threads(batch, out))
    return out


def resized_crop(batch: np.ndarray, boxes, size: ImageSize) -> np.ndarray:
    """Crop box n = (top, left, height, width) of image n (floats allowed) and resize it bilinearly to
    `size`, half-pixel centres as torchvision/PIL without antialiasing (align_corners=False), edges
    replicated. boxes: (N, 4); (N, H, W, C) -> (N, h, w, C)."""
    batch = _check_batch(batch)
    oh, ow = _image_size(size)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (batch.shape[0], 4) or not np.all(np.isfinite(boxes)) or np.any(boxes[:, 2:] <= 0):
        raise ValueError(f"boxes must be finite (top, left, height > 0, width > 0) rows with shape "
                         f"({batch.shape[0]}, 4), got {boxes if boxes.size <= 16 else boxes.shape}")
    top, left, height, width = boxes.T
    sy, sx = height / oh, width / ow
    zero = np.zeros_like(sy)
    coeffs = np.stack([sy, zero, top + 0.5 * sy - 0.5, zero, sx, left + 0.5 * sx - 0.5], axis=1)
    return warp_affine(batch, coeffs, (oh, ow), border="replicate")


def rotation_coeffs(angles: np.ndarray, height: int, width: int) -> np.ndarray:
    """The inverse maps (N, 6) of `warp_affine` that rotate each image about its centre by angles[n]
    degrees, counter-clockwise as displayed (rows pointing down)."""
    theta = np.deg2rad(angles)
    cos, sin = np.cos(theta), np.sin(theta)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    return np.stack([cos, sin, cy - cos * cy - sin * cx, -sin, cos, cx + sin * cy - cos * cx], axis=1)


def rotate(batch: np.ndarray, angles, fill=0.0) -> np.ndarray:
    """Rotate image n by angles[n] degrees counter-clockwise about its centre ((H-1)/2, (W-1)/2), bilinear,
    the corners that come from outside the image set to `fill`. (N, H, W, C) -> (N, H, W, C)."""
    batch = _check_batch(batch)
    n, height, width = batch.shape[:3]
    coeffs = rotation_coeffs(_per_image(angles, n, "angles"), height, width)
    return warp_affine(batch, coeffs, (height, width), fill=fill)


def color_jitter(batch: np.ndarray, brightness=1.0, contrast=1.0, saturation=1.0) -> np.ndarray:
    """torchvision's adjust_brightness, adjust_contrast, adjust_saturation in this order, with per-image
    factors (1 = unchanged): brightness scales, contrast blends with the image's mean grey, saturation with
    each pixel's grey (ITU-R 601 luma); each step clipped to [0, 255] (uint8) or [0, 1] (float32).
    C must be 3 (RGB) or 1 (saturation does nothing). (N, H, W, C) -> (N, H, W, C)."""
    batch = _check_batch(batch)
    if batch.shape[3] not in (1, 3):
        raise ValueError(f"color_jitter needs 1 or 3 channels, got a batch of shape {batch.shape}")
    n = batch.shape[0]
    factors = [_per_image(v, n, name) for v, name in
               ((brightness, "brightness"), (contrast, "contrast"), (saturation, "saturation"))]
    for f, name in zip(factors, ("brightness", "contrast", "saturation")):
        if n and f.min() < 0:
            raise ValueError(f"{name} factors must be >= 0, got minimum {f.min()}")
    out = np.empty_like(batch)
    _augment.color_jitter(batch, *factors, out, _threads(batch, out))
    return out


def lens_distortion(batch: np.ndarray, k1, fill=0.0) -> np.ndarray:
    """Radial distortion with coefficient k1[n]: output offset d from the centre samples the input at
    d * (1 + k1 * r^2), r = |d| / half diagonal; k1 > 0 barrel, k1 < 0 pincushion, 0 identity. Bilinear,
    `fill` outside. (N, H, W, C) -> (N, H, W, C)."""
    batch = _check_batch(batch)
    out = np.empty_like(batch)
    _augment.warp_radial(batch, _per_image(k1, batch.shape[0], "k1"), _fill_values(fill, batch.shape[3]),
                         int(_BORDERS["constant"]), out, _threads(batch, out))
    return out


# ------------------------------------------------------------------------------------------- transforms
class Transform:
    """A random augmentation: `t(batch, rng)` draws per-image parameters from `rng` and applies them."""

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _check_probability(p) -> float:
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return float(p)


class RandomFlip(Transform):
    """Flip each image with probability p: mode 'horizontal' (left-right), 'vertical', or 'both' (each axis
    drawn independently)."""

    def __init__(self, mode: str = "horizontal", p: float = 0.5):
        if mode not in ("horizontal", "vertical", "both"):
            raise ValueError(f"mode must be 'horizontal', 'vertical' or 'both', got {mode!r}")
        self.mode, self.p = mode, _check_probability(p)

    def __call__(self, batch, rng):
        n = len(batch)
        horizontal = rng.random(n) < self.p if self.mode in ("horizontal", "both") else False
        vertical = rng.random(n) < self.p if self.mode in ("vertical", "both") else False
        return flip(batch, horizontal, vertical)


class RandomCrop(Transform):
    """Pad by `padding` on every side (zeros or reflect) and cut a random `size` window: CIFAR's
    RandomCrop(32, padding=4)."""

    def __init__(self, size: ImageSize, padding: int = 0, padding_mode: str = "zeros"):
        self.size = _image_size(size)
        if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"padding must be an int >= 0, got {padding!r}")
        if padding_mode not in _PADDINGS:
            raise ValueError(f"padding_mode must be one of {sorted(_PADDINGS)}, got {padding_mode!r}")
        self.padding, self.padding_mode = int(padding), padding_mode

    def __call__(self, batch, rng):
        n, height, width = np.shape(batch)[:3]
        (oh, ow), pad = self.size, self.padding
        if oh > height + 2 * pad or ow > width + 2 * pad:
            raise ValueError(f"crop size {self.size} is larger than the padded image ({height + 2 * pad}, "
                             f"{width + 2 * pad})")
        top = rng.integers(0, height + 2 * pad - oh + 1, size=n) - pad
        left = rng.integers(0, width + 2 * pad - ow + 1, size=n) - pad
        return crop(batch, top, left, self.size, self.padding_mode)


class RandomResizedCrop(Transform):
    """torchvision's RandomResizedCrop: a box of area fraction in `scale` and aspect ratio (w/h, drawn
    log-uniformly) in `ratio`, 10 tries per image then a central crop, resized bilinearly to `size`."""

    def __init__(self, size: ImageSize, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = _image_size(size)
        self.scale = _check_range(scale, "scale", 0.0)
        self.ratio = _check_range(ratio, "ratio", 1e-12)

    def boxes(self, n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """The (N, 4) integer boxes (top, left, height, width), drawn as torchvision does, vectorised."""
        tries = 10
        area = height * width * rng.uniform(*self.scale, size=(n, tries))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(n, tries)))
        w = np.round(np.sqrt(area * aspect)).astype(np.int64)
        h = np.round(np.sqrt(area / aspect)).astype(np.int64)
        ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = np.argmax(ok, axis=1)
        found = ok[np.arange(n), first]
        h, w = h[np.arange(n), first], w[np.arange(n), first]
        # Fallback, torchvision's: the whole image cut down to the nearest allowed aspect ratio, centred.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fw, fh = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fh, fw = height, int(round(height * self.ratio[1]))
        else:
            fh, fw = height, width
        h, w = np.where(found, h, fh), np.where(found, w, fw)
        top = np.where(found, np.floor(rng.random(n) * (height - h + 1)).astype(np.int64), (height - h) // 2)
        left = np.where(found, np.floor(rng.random(n) * (width - w + 1)).astype(np.int64), (width - w) // 2)
        return np.stack([top, left, h, w], axis=1)

    def __call__(self, batch, rng):
        n, height, width = np.shape(batch)[:3]
        return resized_crop(batch, self.boxes(n, height, width, rng), self.size)


class RandomRotation(Transform):
    """Rotate each image by an angle drawn uniformly from [-degrees, degrees] (or the range given)."""

    def __init__(self, degrees, fill=0.0):
        rng_ = (-float(degrees), float(degrees)) if isinstance(degrees, numbers.Real) else degrees
        self.degrees = _check_range(rng_, "degrees", -math.inf)
        self.fill = fill

    def __call__(self, batch, rng):
        return rotate(batch, rng.uniform(*self.degrees, size=len(batch)), self.fill)


class ColorJitter(Transform):
    """Factors drawn uniformly from [max(0, 1 - v), 1 + v] for each of brightness, contrast, saturation
    (a value 0 leaves that step out), as torchvision; applied in that fixed order."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0):
        for v, name in ((brightness, "brightness"), (contrast, "contrast"), (saturation, "saturation")):
            if not isinstance(v, numbers.Real) or not 0 <= v < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)

    def __call__(self, batch, rng):
        n = len(batch)
        factors = [rng.uniform(max(0.0, 1 - v), 1 + v, size=n)
                   for v in (self.brightness, self.contrast, self.saturation)]
        return color_jitter(batch, *factors)


class RandomLensDistortion(Transform):
    """Lens distortion with k1 drawn uniformly from [-k1, k1] (or the range given); see lens_distortion."""

    def __init__(self, k1=0.2, fill=0.0):
        rng_ = (-float(k1), float(k1)) if isinstance(k1, numbers.Real) else k1
        self.k1 = _check_range(rng_, "k1", -math.inf)
        self.fill = fill

    def __call__(self, batch, rng):
        return lens_distortion(batch, rng.uniform(*self.k1, size=len(batch)), self.fill)


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose takes callables (batch, rng) -> batch, got {t!r}")

    def __call__(self, batch, rng):
        for t in self.transforms:
            batch = t(batch, rng)
        return batch
