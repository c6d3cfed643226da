"""GEMM and matmul: the matrix products under every layer."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C
from .._validate import as_float_array, check_bool, check_real, common_float_dtype, empty_output
from ._checks import check_activation, check_bias


def _as_matrix(arr: np.ndarray, name: str, vector_as_row: bool) -> np.ndarray:
    if arr.ndim == 1:
        return arr[None, :] if vector_as_row else arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
    return arr


def gemm(
    a,
    b,
    c: Optional[np.ndarray] = None,
    *,
    alpha: float = 1.0,
    beta: float = 0.0,
    transpose_a: bool = False,
    transpose_b: bool = False,
    bias=None,
    activation: Optional[str] = None,
    negative_slope: float = 0.01,
) -> np.ndarray:
    """General matrix multiply with a fused epilogue.

        c = act(alpha * op(a) @ op(b) + beta * c + bias)

    Shapes: op(a) is (m, k), op(b) is (k, n), c is (m, n), bias is (n,) (added to every row: one value
    per output channel). op(x) is x.T when transpose_x is set; transposes and other strided views are read
    in place, without a copy. 1-D a is a row vector, 1-D b a column vector.

    c, when given, is updated in place and returned: it must be a writeable array of the result dtype
    with contiguous rows, not overlapping a, b or bias. With beta == 0 its old contents are never read
    (NaNs in it do not propagate). activation: None/'none', 'relu' or 'leaky_relu' (slope
    `negative_slope` for negative values); NaN stays NaN.
    """
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    transpose_a = check_bool(transpose_a, "transpose_a")
    transpose_b = check_bool(transpose_b, "transpose_b")
    alpha = check_real(alpha, "alpha")
    beta = check_real(beta, "beta")
    negative_slope = check_real(negative_slope, "negative_slope")
    activation = check_activation(activation)

    a2 = _as_matrix(a, "a", vector_as_row=True)
    b2 = _as_matrix(b, "b", vector_as_row=False)
    m, k = a2.shape[::-1] if transpose_a else a2.shape
    k_b, n = b2.shape[::-1] if transpose_b else b2.shape
    if k != k_b:
        raise ValueError(
            f"inner dimensions differ: op(a) has shape {(m, k)} and op(b) has shape {(k_b, n)} "
            f"(a.shape={a.shape}, b.shape={b.shape}, transpose_a={transpose_a}, transpose_b={transpose_b})"
        )
    dtype = common_float_dtype(a2, b2)
    a2, b2 = a2.astype(dtype, copy=False), b2.astype(dtype, copy=False)

    bias = check_bias(bias, n, dtype, "one value per column of c")

    if c is None:
        if beta != 0.0:
            raise ValueError(f"beta={beta} reads c, but no c was given")
        c = empty_output((m, n), dtype, lambda: f"c = op(a) @ op(b) (a.shape={a.shape}, b.shape={b.shape})")
    else:
        _check_output(c, (m, n), dtype, inputs={"a": a2, "b": b2, "bias": bias})

    _C.gemm(a2, b2, c, alpha, beta, transpose_a, transpose_b, bias, activation, negative_slope)
    return c


def _check_output(c, shape: tuple, dtype: np.dtype, inputs: dict) -> None:
    if not isinstance(c, np.ndarray):
        raise TypeError(f"c must be a numpy.ndarray, got {type(c).__name__}")
    if c.shape != shape:
        raise ValueError(f"c must have shape {shape}, got {c.shape}")
    if c.dtype != dtype:
        raise TypeError(f"c must have dtype {dtype} (the dtype of the product), got {c.dtype}")
    if not c.flags.writeable:
        raise ValueError("c is read-only")
    if c.size and c.shape[1] > 1 and c.strides[1] != c.itemsize:
        raise ValueError(f"c must have contiguous rows, got strides {c.strides}")
    if c.size and c.shape[0] > 1 and abs(c.strides[0]) < c.shape[1] * c.itemsize:
        raise ValueError(f"c must not have overlapping rows, got strides {c.strides}")
    for name, arr in inputs.items():
        if arr is not None and np.may_share_memory(c, arr):
            raise ValueError(f"c must not overlap {name}")


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) for 1-D/2-D float arrays; (m, k) @ (k, n) -> (m, n).

    As numpy.matmul for these ranks: a 1-D operand is a vector and its axis is dropped from the result.
    """
    result = gemm(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    if np.ndim(a) == 1:
        result = result[0]
    if np.ndim(b) == 1:
        result = result[..., 0]
    return result
