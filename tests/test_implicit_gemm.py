"""The implicit-GEMM convolution paths against the float64 references, on the shapes that reach them.

The hypothesis cases of test_conv*.py have short column rows (k <= 192); these shapes cross what those
cannot: column rows longer than one k slice (256), so that the forward GEMM packs its narrow B whole and
runs every slice per A block; rows longer than Im2colB's 1024-value gather buffer; pixels on every border
under every padding mode; and the by-row A panels of the AVX2 kernel next to the by-column ones of the
reference kernels (each GEMM kernel is run).
"""
import zlib

import numpy as np
import pytest
from conftest import available_kernels
from conv_testing import MODES, check_by_finite_differences, sum_tolerance

import convkit
from convkit import ops
from convkit.reference import conv_backward_reference, conv_reference

GEMM_KERNELS = [(k.name, np.float32 if k.dtype == "f32" else np.float64) for k in available_kernels("gemm")]

CASES = {
    # k = 27 * 12 = 324: two k slices, n = 20 (B packed whole); borders on all three axes
    **{f"conv3d-{m}": ((2, 4, 7, 9, 12), (3, 3, 3, 12, 20), dict(padding=1, padding_mode=m)) for m in MODES},
    "conv3d-strided-dilated": ((1, 6, 9, 11, 10), (3, 2, 3, 10, 7), dict(stride=(2, 1, 3), dilation=(1, 2, 2),
                                                                           padding=((2, 1), (1, 1), (0, 2)))),
    # the 7x7 stride-2 stem: 3 channels, runs of 21 values, most panels clear of the W padding
    "stem": ((2, 19, 23, 3), (7, 7, 3, 8), dict(stride=2, padding=3)),
    # k = 9 * 130 = 1170: Im2colB gathers each pixel's row in two pieces
    "long-rows": ((2, 5, 6, 130), (3, 3, 130, 6), dict(padding=1)),
    "long-rows-groups": ((1, 5, 5, 260), (3, 3, 130, 4), dict(padding=1, groups=2, padding_mode="reflect")),
}


def data(name, dtype):
    x_shape, w_shape, options = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    dy = rng.standard_normal(ops.conv(x, w, **options).shape).astype(dtype)
    return x, w, dy, options


@pytest.mark.parametrize("kernel,dtype", GEMM_KERNELS, ids=[name for name, _ in GEMM_KERNELS])
@pytest.mark.parametrize("name", CASES)
def test_forward_and_backward_match_the_references(kernel, dtype, name):
    x, w, dy, options = data(name, dtype)
    with convkit.use_kernel(kernel):
        y = ops.conv(x, w, **options)
        dx, dw, db = ops.conv_backward(dy, x, w, **options)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    ref_dx, ref_dw, ref_db = conv_backward_reference(dy64, x64, w64, **options)
    x_max, w_max, dy_max = np.abs(x).max(), np.abs(w).max(), np.abs(dy).max()
    pixels = int(np.prod(dy.shape[:-1]))
    terms = int(np.prod(w.shape[:-1]))
    np.testing.assert_allclose(y, conv_reference(x64, w64, **options), rtol=0,
                               atol=sum_tolerance(dtype, terms, x_max * w_max))
    # reflect/circular padding can fold a few taps onto one input sample: 3x the terms of one tap set
    dx_terms = 3 * int(np.prod(w.shape[:-2])) * w.shape[-1]
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=sum_tolerance(dtype, dx_terms, dy_max * w_max))
    np.testing.assert_allclose(dw, ref_dw, rtol=0, atol=sum_tolerance(dtype, pixels, dy_max * x_max))
    np.testing.assert_allclose(db, ref_db, rtol=0, atol=sum_tolerance(dtype, pixels, dy_max))


@pytest.mark.parametrize("name", ["conv3d-zeros", "conv3d-circular", "stem", "long-rows-groups"])
def test_results_do_not_depend_on_the_thread_count(name):
    x, w, dy, options = data(name, np.float32)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append((ops.conv(x, w, **options), *ops.conv_backward(dy, x, w, **options)))
    for result in results[1:]:
        for got, first, what in zip(result, results[0], ("y", "dx", "dw", "db")):
            np.testing.assert_array_equal(got, first, err_msg=what)


@pytest.mark.parametrize("name", ["conv3d-reflect", "long-rows-groups"])
def test_weight_gradient_by_finite_differences(name):
    x, w, dy, options = data(name, np.float64)
    rng = np.random.default_rng(7)
    check_by_finite_differences(
        lambda x, w: ops.conv(x, w, **options),
        lambda dy: ops.conv_backward(dy, x, w, **options, need=("x", "w"))[:2],
        (x, w), rng,
    )


def test_b_packed_whole_gives_the_bits_of_slice_by_slice():
    """With a narrow B, the GEMM packs all of it once and runs each A block through every k slice; where
    that does not fit the workspace limit it packs slice by slice as for any other shape. The sums are the
    same, in the same order: the bits must be too."""
    kernel = "f32-gemm-6x16-avx2"
    if kernel not in [name for name, _ in GEMM_KERNELS]:
        pytest.skip(f"{kernel} does not run on this CPU")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((389, 700)).astype(np.float32), rng.standard_normal((700, 20)).astype(np.float32)
    convkit.set_num_threads(1)
    limit = convkit.get_workspace_limit()
    with convkit.use_kernel(kernel):
        whole = ops.matmul(a, b)
        # This kernel packs A blocks of 144 x 256 floats (147,456 bytes) and B panels 32 columns wide:
        # slice by slice 256 rows (32,768 bytes), whole 700 rows (89,600 bytes). 200,000 bytes fits the
        # first and not the second.
        convkit.set_workspace_limit(200_000)
        try:
            by_slice = ops.matmul(a, b)
        finally:
            convkit.set_workspace_limit(limit)
    np.testing.assert_array_equal(whole, by_slice)
    np.testing.assert_allclose(whole, a.astype(np.float64) @ b.astype(np.float64), rtol=0, atol=1e-3)
