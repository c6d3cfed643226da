"""The Cython augmentation kernels against independent NumPy float64 references, and the random transforms."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit.data import augmentations as A

DTYPES = [np.uint8, np.float32]


def images(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def bilinear_reference(img, sy, sx, fill, border):
    """img (H, W, C) sampled at float64 coordinate grids sy, sx (pixel centres at integers), float64."""
    H, W, C = img.shape
    img = img.astype(np.float64)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]

    def at(y, x):
        if border == "replicate":
            return img[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)]
        inside = (y >= 0) & (y < H) & (x >= 0) & (x < W)
        vals = img[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)]
        return np.where(inside[..., None], vals, np.broadcast_to(fill, (C,)))

    return ((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1))
            + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1)))


def assert_close_to_reference(out, ref64):
    if out.dtype == np.uint8:
        expected = np.clip(ref64, 0, 255)
        # Rounded to nearest: at most 0.5 away, plus a hair for sums landing on .5 in another order.
        assert np.max(np.abs(out - expected)) <= 0.5 + 1e-6
    else:
        np.testing.assert_allclose(out, ref64, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- exact kernels
@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_matches_slicing(dtype):
    x = images((6, 5, 7, 3), dtype)
    h = np.array([0, 1, 0, 1, 1, 0], bool)
    v = np.array([0, 0, 1, 1, 0, 1], bool)
    out = A.flip(x, h, v)
    for n in range(6):
        expected = x[n][::-1] if v[n] else x[n]
        expected = expected[:, ::-1] if h[n] else expected
        np.testing.assert_array_equal(out[n], expected)
    assert out.dtype == dtype and not np.shares_memory(out, x)


@given(st.data())
def test_crop_matches_padded_slice(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    n, h, w, c = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7)),
                  data.draw(st.integers(1, 4)))
    mode = data.draw(st.sampled_from(["zeros", "reflect"]))
    pad = data.draw(st.integers(0, min(h, w) - 1 if mode == "reflect" else 4))
    oh, ow = data.draw(st.integers(1, h + 2 * pad)), data.draw(st.integers(1, w + 2 * pad))
    top = np.array([data.draw(st.integers(0, h + 2 * pad - oh)) for _ in range(n)]) - pad
    left = np.array([data.draw(st.integers(0, w + 2 * pad - ow)) for _ in range(n)]) - pad
    x = images((n, h, w, c), dtype, seed=n * h)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant" if mode == "zeros" else "reflect")
    out = A.crop(x, top, left, (oh, ow), padding_mode=mode)
    for i in range(n):
        t, l = top[i] + pad, left[i] + pad
        np.testing.assert_array_equal(out[i], padded[i, t:t + oh, l:l + ow])


def test_crop_reflect_refuses_reaching_past_one_mirror():
    with pytest.raises(ValueError, match="reflect"):
        A.crop(images((1, 4, 4, 1), np.uint8), -4, 0, (4, 4), padding_mode="reflect")


# ---------------------------------------------------------------------------------- bilinear kernels
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_warp_affine_matches_reference(dtype, border):
    n, h, w, c, oh, ow = 5, 9, 7, 3, 6, 8
    x = images((n, h, w, c), dtype)
    coeffs = np.random.default_rng(1).uniform(-1.5, 1.5, (n, 6))
    coeffs[:, [2, 5]] *= 4
    fill = np.array([10.0, 0.25, 200.0]) if dtype == np.uint8 else np.array([0.5, 0.0, 1.0])
    out = A.warp_affine(x, coeffs, (oh, ow), fill=fill, border=border)
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    for k, (a, b, cc, d, e, f) in enumerate(coeffs):
        ref = bilinear_reference(x[k], a * i + b * j + cc, d * i + e * j + f, fill, border)
        assert_close_to_reference(out[k], ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotate_matches_reference(dtype):
    n, h, w, c = 4, 10, 13, 3
    x = images((n, h, w, c), dtype)
    angles = np.array([-30.0, 12.5, 45.0, 170.0])
    out = A.rotate(x, angles, fill=7 if dtype == np.uint8 else 0.5)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for k, deg in enumerate(angles):
        # Counter-clockwise on screen: in (x right, y up) coordinates, output p = R(theta) q, so q = R(-theta) p.
        t = np.deg2rad(deg)
        px, py = j - cx, -(i - cy)
        qx, qy = np.cos(t) * px + np.sin(t) * py, -np.sin(t) * px + np.cos(t) * py
        ref = bilinear_reference(x[k], cy - qy, cx + qx, 7 if dtype == np.uint8 else 0.5, "constant")
        assert_close_to_reference(out[k], ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotate_quarter_turns_match_rot90(dtype):
    x = images((3, 6, 6, 2), dtype)
    for quarter in (1, 2, 3):
        out = A.rotate(x, 90.0 * quarter)
        expected = np.rot90(x, quarter, axes=(1, 2))
        if dtype == np.uint8:
            np.testing.assert_array_equal(out, expected)
        else:
            np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_resized_crop_matches_reference(dtype):
    x = images((3, 12, 10, 3), dtype)
    boxes = np.array([[2, 1, 7, 5], [0, 0, 12, 10], [3.5, 2.25, 4.0, 6.5]])
    oh, ow = 9, 11
    out = A.resized_crop(x, boxes, (oh, ow))
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    for k, (top, left, bh, bw) in enumerate(boxes):
        sy = top + (i + 0.5) * bh / oh - 0.5  # half-pixel centres (align_corners=False)
        sx = left + (j + 0.5) * bw / ow - 0.5
        assert_close_to_reference(out[k], bilinear_reference(x[k], sy, sx, 0.0, "replicate"))


@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_warp_far_outside_reads_fill_or_edge(border):
    x = images((1, 4, 5, 2), np.float32)
    coeffs = [[0, 0, -1e300, 0, 0, 1e300]]  # every output pixel maps far beyond the top-right corner
    out = A.warp_affine(x, coeffs, (2, 2), fill=[0.25, 0.75], border=border)
    expected = [0.25, 0.75] if border == "constant" else x[0, 0, 4]
    np.testing.assert_array_equal(out, np.broadcast_to(expected, (1, 2, 2, 2)))


def test_resized_crop_halving_averages_2x2_blocks():
    x = images((2, 8, 6, 3), np.float32)
    out = A.resized_crop(x, [[0, 0, 8, 6]] * 2, (4, 3))
    expected = x.astype(np.float64).reshape(2, 4, 2, 3, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lens_distortion_matches_reference(dtype):
    n, h, w, c = 3, 11, 8, 3
    x = images((n, h, w, c), dtype)
    k1 = np.array([0.3, -0.25, 0.05])
    out = A.lens_distortion(x, k1, fill=3.0)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r2 = ((i - cy) ** 2 + (j - cx) ** 2) / (cy ** 2 + cx ** 2)  # 1 at the corners
    for k in range(n):
        scale = 1 + k1[k] * r2
        ref = bilinear_reference(x[k], cy + (i - cy) * scale, cx + (j - cx) * scale, 3.0, "constant")
        assert_close_to_reference(out[k], ref)


def test_barrel_distortion_bows_a_border_line_outward():
    x = np.zeros((1, 21, 21, 1), np.float32)
    x[0, :, 0] = 1  # a straight line along the left border
    out = A.lens_distortion(x, 0.3)
    column = out[0, :, :, 0].argmax(axis=1)  # where the line is on each row
    # k1 > 0 squeezes the border in, more so far from the centre: the line's middle stays the outermost part.
    assert 0 < column[10] < column[3] and column[3] == column[17]


# --------------------------------------------------------------------------------------- colour jitter
def color_jitter_reference(x, b, c, s):
    top = 255.0 if x.dtype == np.uint8 else 1.0
    out = []
    for img, bf, cf, sf in zip(x.astype(np.float64), b, c, s):
        img = np.clip(img * bf, 0, top)
        grey = img @ np.array([0.299, 0.587, 0.114]) if img.shape[-1] == 3 else img[..., 0]
        img = np.clip(cf * img + (1 - cf) * grey.mean(), 0, top)
        if img.shape[-1] == 3:
            grey = img @ np.array([0.299, 0.587, 0.114])
            img = np.clip(sf * img + (1 - sf) * grey[..., None], 0, top)
        out.append(img)
    return np.array(out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_matches_reference(dtype, channels):
    x = images((4, 5, 6, channels), dtype)
    b, c, s = np.array([1.0, 1.4, 0.6, 2.0]), np.array([1.0, 0.5, 1.6, 0.0]), np.array([1.0, 0.0, 1.8, 0.7])
    assert_close_to_reference(A.color_jitter(x, b, c, s), color_jitter_reference(x, b, c, s))


def test_color_jitter_zero_saturation_is_grey():
    out = A.color_jitter(images((2, 4, 4, 3), np.float32), saturation=0.0)
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)
    np.testing.assert_allclose(out[..., 1], out[..., 2], atol=1e-6)


# ------------------------------------------------------------------------------------ identities, threads
@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_parameters_give_the_input(dtype):
    x = images((3, 7, 9, 3), dtype)
    n, h, w = x.shape[:3]
    for out in (A.flip(x), A.crop(x, 0, 0, (h, w)), A.rotate(x, 0.0), A.lens_distortion(x, 0.0),
                A.color_jitter(x), A.resized_crop(x, [[0, 0, h, w]] * n, (h, w)),
                A.warp_affine(x, [[1, 0, 0, 0, 1, 0]] * n, (h, w))):
        np.testing.assert_array_equal(out, x)


def test_empty_batch():
    x = np.zeros((0, 5, 5, 3), np.uint8)
    pipeline = A.Compose([A.RandomFlip(), A.RandomCrop(4, padding=1), A.RandomRotation(10),
                          A.ColorJitter(0.2, 0.2, 0.2), A.RandomResizedCrop(3), A.RandomLensDistortion()])
    assert pipeline(x, np.random.default_rng(0)).shape == (0, 3, 3, 3)


CIFAR_RECIPE = A.Compose([A.RandomFlip("horizontal"), A.RandomCrop(32, padding=4)])
EVERYTHING = A.Compose([A.RandomFlip("both"), A.RandomCrop(30, padding=3, padding_mode="reflect"),
                        A.RandomResizedCrop(28, scale=(0.3, 1.0)), A.RandomRotation(15, fill=128),
                        A.ColorJitter(0.3, 0.3, 0.3), A.RandomLensDistortion(0.2)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pipeline", [CIFAR_RECIPE, EVERYTHING], ids=["cifar", "everything"])
def test_same_seed_same_result_any_thread_count(dtype, pipeline):
    x = images((16, 32, 32, 3), dtype)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(pipeline(x, np.random.default_rng(42)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert not np.array_equal(pipeline(x, np.random.default_rng(43)), results[0])


# ----------------------------------------------------------------------------------------- transforms
def test_random_flip_probability_extremes_and_rate():
    x = images((400, 3, 4, 1), np.uint8)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(A.RandomFlip(p=0.0)(x, rng), x)
    np.testing.assert_array_equal(A.RandomFlip(p=1.0)(x, rng), x[:, :, ::-1])
    np.testing.assert_array_equal(A.RandomFlip("vertical", p=1.0)(x, rng), x[:, ::-1])
    flipped = np.all(A.RandomFlip(p=0.5)(x, rng) == x[:, :, ::-1], axis=(1, 2, 3))
    assert 150 < flipped.sum() < 250


def test_random_crop_takes_windows_of_the_padded_image():
    x = images((50, 8, 8, 2), np.uint8)
    out = A.RandomCrop(8, padding=2)(x, np.random.default_rng(3))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    offsets = set()
    for k in range(50):
        hits = [(t, l) for t in range(5) for l in range(5) if np.array_equal(padded[k, t:t + 8, l:l + 8], out[k])]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 10  # offsets do vary


def test_random_resized_crop_boxes_follow_scale_and_ratio():
    t = A.RandomResizedCrop(16, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    boxes = t.boxes(500, 40, 50, np.random.default_rng(0))
    top, left, h, w = boxes.T
    assert np.all((top >= 0) & (left >= 0) & (top + h <= 40) & (left + w <= 50))
    area = h * w / (40 * 50)
    assert np.all((area > 0.18) & (area < 0.63)) and np.all((w / h > 0.45) & (w / h < 2.2))
    # Impossible scale: the central fallback, the whole image within the ratio range.
    fallback = A.RandomResizedCrop(8, scale=(5.0, 6.0), ratio=(1.0, 1.0)).boxes(3, 10, 20, np.random.default_rng(0))
    np.testing.assert_array_equal(fallback, [[0, 5, 10, 10]] * 3)


def test_random_rotation_angles_stay_in_range():
    x = np.zeros((1, 9, 9, 1), np.float32)
    x[0, 4, :] = 1  # a horizontal bar; +-10 degrees keeps its ends near the middle row
    out = A.RandomRotation(10)(np.repeat(x, 20, 0), np.random.default_rng(0))
    assert np.all(out[:, [0, 8]].max(axis=(1, 2, 3)) < 0.05)


def test_compose_applies_in_order():
    x = images((2, 6, 6, 1), np.uint8)
    calls = []
    pipeline = A.Compose([lambda b, r: calls.append("a") or b[:, :4], lambda b, r: calls.append("b") or b * 0])
    out = pipeline(x, np.random.default_rng(0))
    assert calls == ["a", "b"] and out.shape == (2, 4, 6, 1)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, error, match", [
    (lambda: A.flip(np.zeros((2, 3, 3), np.uint8)), ValueError, "shape"),
    (lambda: A.flip(np.zeros((2, 3, 3, 1), np.float64)), TypeError, "float64"),
    (lambda: A.flip(np.zeros((2, 3, 3, 1), np.uint8), [True] * 3), ValueError, "horizontal"),
    (lambda: A.flip(np.zeros((2, 0, 3, 1), np.uint8)), ValueError, "H, W, C >= 1"),
    (lambda: A.crop(np.zeros((2, 3, 3, 1), np.uint8), 0, 0, 0), ValueError, "size"),
    (lambda: A.crop(np.zeros((2, 3, 3, 1), np.uint8), 0.5, 0, 2), TypeError, "top must be integers"),
    (lambda: A.crop(np.zeros((2, 3, 3, 1), np.uint8), 0, 0, 2, padding_mode="edge"), ValueError, "padding_mode"),
    (lambda: A.rotate(np.zeros((2, 3, 3, 1), np.uint8), np.nan), ValueError, "angles"),
    (lambda: A.rotate(np.zeros((2, 3, 3, 2), np.uint8), 5, fill=[1, 2, 3]), ValueError, "fill"),
    (lambda: A.warp_affine(np.zeros((2, 3, 3, 1), np.uint8), np.zeros((2, 5)), 3), ValueError, "coeffs"),
    (lambda: A.warp_affine(np.zeros((2, 3, 3, 1), np.uint8), np.zeros((2, 6)), 3, border="wrap"), ValueError, "border"),
    (lambda: A.resized_crop(np.zeros((1, 3, 3, 1), np.uint8), [[0, 0, 0, 2]], 3), ValueError, "boxes"),
    (lambda: A.color_jitter(np.zeros((1, 3, 3, 2), np.uint8)), ValueError, "channels"),
    (lambda: A.color_jitter(np.zeros((1, 3, 3, 3), np.uint8), brightness=-1), ValueError, "brightness"),
    (lambda: A.RandomFlip("sideways"), ValueError, "mode"),
    (lambda: A.RandomFlip(p=1.5), ValueError, "p must"),
    (lambda: A.RandomCrop(8, padding=-1), ValueError, "padding"),
    (lambda: A.RandomCrop(8)(np.zeros((1, 4, 4, 1), np.uint8), np.random.default_rng()), ValueError, "larger"),
    (lambda: A.RandomResizedCrop(8, scale=(0.9, 0.1)), ValueError, "scale"),
    (lambda: A.ColorJitter(brightness=-0.1), ValueError, "brightness"),
    (lambda: A.Compose([1]), TypeError, "callables"),
])
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_benchmark_quick_runs():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_augment.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"][0]["pipeline"] == "flip + crop pad 4 (CIFAR)"
    assert all(row["images/s 1T"] > 0 and row["images/s 2T"] > 0 for row in report["rows"])
    assert all(b > 0 for b in report["machine"]["resnet20_conv_budget_images_per_s"].values())
