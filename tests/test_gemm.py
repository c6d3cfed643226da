"""GEMM against an independent float64 einsum oracle, for every kernel this CPU can run."""
import numpy as np
import pytest
from conftest import available_kernels, error_bound
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import ops
from convkit.reference import matmul_reference as oracle

GEMM_KERNELS = available_kernels("gemm")
DTYPES = {"f32": np.float32, "f64": np.float64}
# 0, 1, primes, tile multiples and their neighbours; large enough values cross the MR/NR/KC edges.
SIZES = st.sampled_from([0, 1, 2, 3, 5, 6, 7, 8, 13, 16, 17, 31, 37, 48, 61, 97])


def operand(rng, rows, cols, dtype, transpose, layout):
    """A (rows x cols) operand as stored: transposed storage, and a contiguous/strided/reversed view."""
    shape = (cols, rows) if transpose else (rows, cols)
    if layout == "contiguous":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "strided":  # every other row and column of a bigger array
        return rng.standard_normal((2 * shape[0] + 1, 2 * shape[1] + 1)).astype(dtype)[1::2, 1::2]
    return rng.standard_normal(shape).astype(dtype)[::-1, ::-1]  # negative strides


def assert_close(got, a, b, transpose_a=False, transpose_b=False):
    ref = oracle(a, b, transpose_a, transpose_b)
    a64 = a.astype(np.float64).T if transpose_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if transpose_b else b.astype(np.float64)
    bound = error_bound(a64, b64, got.dtype, a64.shape[1])
    assert got.shape == ref.shape
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) - bound)


@pytest.mark.parametrize("kernel", GEMM_KERNELS, ids=lambda k: k.name)
@given(
    m=SIZES,
    n=SIZES,
    k=SIZES,
    transpose_a=st.booleans(),
    transpose_b=st.booleans(),
    layout_a=st.sampled_from(["contiguous", "strided", "reversed"]),
    layout_b=st.sampled_from(["contiguous", "strided", "reversed"]),
    seed=st.integers(0, 2**31),
)
def test_matmul_matches_oracle(kernel, m, n, k, transpose_a, transpose_b, layout_a, layout_b, seed):
    rng = np.random.default_rng(seed)
    dtype = DTYPES[kernel.dtype]
    a = operand(rng, m, k, dtype, transpose_a, layout_a)
    b = operand(rng, k, n, dtype, transpose_b, layout_b)
    with convkit.use_kernel(kernel.name):
        got = ops.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    assert got.dtype == dtype
    assert_close(got, a, b, transpose_a, transpose_b)


@pytest.mark.parametrize("kernel", GEMM_KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize(
    "m,n,k",
    [(300, 4200, 520), (1, 5000, 3), (5000, 1, 3), (3, 3, 5000), (6, 50176 // 8, 25), (389, 64, 576)],
    ids=["all-blocks", "wide-row", "tall-column", "long-k", "lenet-shape", "conv-shape"],
)
def test_matmul_large_and_skinny(kernel, m, n, k):
    """Shapes that cross every cache block (MC, KC, NC) and the skinny extremes."""
    rng = np.random.default_rng(m * n + k)
    dtype = DTYPES[kernel.dtype]
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    with convkit.use_kernel(kernel.name):
        assert_close(ops.matmul(a, b), a, b)


@pytest.mark.parametrize("kernel", GEMM_KERNELS, ids=lambda k: k.name)
@given(m=SIZES, n=SIZES, k=SIZES, alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, -3.0]),
       activation=st.sampled_from([None, "relu", "leaky_relu"]), use_bias=st.booleans(), seed=st.integers(0, 2**31))
def test_gemm_alpha_beta_bias_activation(kernel, m, n, k, alpha, beta, activation, use_bias, seed):
    rng = np.random.default_rng(seed)
    dtype = DTYPES[kernel.dtype]
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype) if use_bias else None
    c = c0.copy()
    with convkit.use_kernel(kernel.name):
        out = ops.gemm(a, b, c, alpha=alpha, beta=beta, bias=bias, activation=activation, negative_slope=0.1)
    assert out is c
    ref = alpha * oracle(a, b) + beta * c0.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    if activation == "relu":
        ref = np.maximum(ref, 0)
    elif activation == "leaky_relu":
        ref = np.where(ref < 0, 0.1 * ref, ref)
    eps = np.finfo(dtype).eps
    scale = abs(alpha) * (np.abs(a) @ np.abs(b)).astype(np.float64) + abs(beta) * np.abs(c0) + 1.0
    assert np.all(np.abs(out - ref) <= (k + 4) * eps * scale)


def test_beta_zero_never_reads_c():
    a, b = np.ones((5, 3), np.float32), np.ones((3, 7), np.float32)
    c = np.full((5, 7), np.nan, np.float32)
    ops.gemm(a, b, c)
    np.testing.assert_array_equal(c, 3.0)


def test_activation_keeps_nan():
    a = np.array([[np.nan], [-2.0], [3.0]], np.float32)
    out = ops.gemm(a, np.ones((1, 1), np.float32), activation="relu")
    assert np.isnan(out[0, 0]) and out[1, 0] == 0.0 and out[2, 0] == 3.0


def test_empty_and_k_zero():
    assert ops.matmul(np.zeros((0, 4), np.float32), np.zeros((4, 3), np.float32)).shape == (0, 3)
    out = ops.matmul(np.zeros((3, 0), np.float32), np.zeros((0, 2), np.float32))
    np.testing.assert_array_equal(out, np.zeros((3, 2)))
    c = np.ones((2, 2))
    ops.gemm(np.zeros((2, 0)), np.zeros((0, 2)), c, beta=2.0, bias=np.array([1.0, -5.0]), activation="relu")
    np.testing.assert_array_equal(c, [[3.0, 0.0], [3.0, 0.0]])


def test_vectors_follow_numpy_matmul():
    rng = np.random.default_rng(0)
    a, b, v = rng.random((4, 3)), rng.random((3, 5)), rng.random(3)
    np.testing.assert_allclose(ops.matmul(v, b), v @ b)
    np.testing.assert_allclose(ops.matmul(a, v), a @ v)
    assert ops.matmul(v, v).shape == ()
    np.testing.assert_allclose(ops.matmul(v, v), v @ v)


def test_mixed_precision_promotes_and_odd_layouts_work():
    rng = np.random.default_rng(1)
    a32, b64 = rng.random((6, 4)).astype(np.float32), rng.random((4, 9))
    assert ops.matmul(a32, b64).dtype == np.float64
    big_endian = b64.astype(">f8")
    np.testing.assert_allclose(ops.matmul(a32, big_endian), a32.astype(np.float64) @ b64)
    record = np.zeros((4, 9), dtype=[("x", np.float64), ("tag", np.int8)])  # strides of 9 bytes
    record["x"] = b64
    np.testing.assert_allclose(ops.matmul(a32, record["x"]), a32.astype(np.float64) @ b64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_result_does_not_depend_on_thread_count(dtype):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((389, 700)).astype(dtype), rng.standard_normal((700, 301)).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(ops.matmul(a, b))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


BAD_CALLS = [
    (lambda: ops.matmul(np.ones((2, 2), np.int64), np.ones((2, 2))), TypeError, "int64"),
    (lambda: ops.matmul(np.ones((2, 2), np.float16), np.ones((2, 2))), TypeError, "float16"),
    (lambda: ops.matmul(np.ones((2, 2), bool), np.ones((2, 2))), TypeError, "bool"),
    (lambda: ops.matmul(np.array([[object()]]), np.ones((1, 1))), TypeError, "object"),
    (lambda: ops.matmul(np.ones((2, 2, 2)), np.ones((2, 2))), ValueError, r"\(2, 2, 2\)"),
    (lambda: ops.matmul(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"\(2, 3\).*\(2, 3\)"),
    (lambda: ops.matmul(np.ones((2, 3)), np.ones((2, 3)), transpose_a="yes"), TypeError, "'yes'"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), beta=1.0), ValueError, "beta=1.0"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), alpha=float("nan")), ValueError, "nan"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), alpha=True), TypeError, "True"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 2))), ValueError, r"\(3, 2\)"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2), np.float32)), TypeError, "float32"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 4))[:, ::2]), ValueError, "contiguous rows"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), [[0.0, 0.0]]), TypeError, "list"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), bias=np.ones(3)), ValueError, r"\(3,\)"),
    (lambda: ops.gemm(np.ones((2, 2)), np.ones((2, 2)), activation="gelu"), ValueError, "'gelu'"),
]


@pytest.mark.parametrize("call,error,match", BAD_CALLS)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_output_must_not_alias_inputs_or_be_read_only():
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="overlap a"):
        ops.gemm(a, np.ones((3, 3)), a)
    frozen = np.zeros((3, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.gemm(a, np.ones((3, 3)), frozen)
