"""atheris harness for the arguments of convkit.ops: shapes, dtypes, strides, paddings, groups, tuples.

    python tests/fuzz/fuzz_ops.py -max_total_time=600 [corpus_dir]      # or: make fuzz

Each input picks an op and builds its arguments from the fuzzer's bytes: small arrays (axes of 0 to 6,
any rank from 0 to 6, float32/float64 and some wrong dtypes, NaN/Inf sprinkled in) and option values drawn
from boundary integers (0, -1, 2**31, 2**63 - 1, -8e18, ...), tuples of any length, and odd types. A call
may raise ValueError, TypeError or MemoryError; anything else, a crash, or a sanitizer report is a finding.
Not collected by pytest (test_fuzz_smoke.py runs it briefly when atheris is installed).
"""
from __future__ import annotations

import sys

import atheris
import numpy as np

with atheris.instrument_imports():  # coverage feedback from convkit's Python layer (the core is not instrumented)
    import convkit
    from convkit import ops

EXPECTED = (ValueError, TypeError, MemoryError)
BOUNDARY_INTS = [0, 1, 2, 3, -1, -2, 7, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, 2**63, -(2**63),
                 -8 * 10**18, 8 * 10**18]
ODD_VALUES = [None, 1.5, True, "same", "valid", "reflect", (), [], (1,), (1, 2, 3, 4), ((1, 2),), float("nan"),
              np.int64(2), np.float32(1.0), "x"]
DTYPES = [np.float32, np.float64, np.float32, np.float64, np.float16, np.int32, np.bool_, np.complex64, object]


class Args:
    """Draws argument values from a FuzzedDataProvider."""

    def __init__(self, data: bytes):
        self.fdp = atheris.FuzzedDataProvider(data)

    def small(self, lo: int = 0, hi: int = 6) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def pick(self, values):
        return values[self.fdp.ConsumeIntInRange(0, len(values) - 1)]

    def int_option(self):
        """Mostly small valid values, sometimes a boundary integer, sometimes an odd type or tuple."""
        kind = self.small(0, 9)
        if kind < 5:
            return self.small(1, 3)
        if kind < 7:
            return self.pick(BOUNDARY_INTS)
        if kind < 8:
            return tuple(self.int_option() for _ in range(self.small(0, 4)))
        return self.pick(ODD_VALUES)

    def padding(self):
        kind = self.small(0, 5)
        if kind == 0:
            return self.pick(["valid", "same", "full"])
        if kind == 1:
            return tuple((self.small(0, 3), self.small(0, 3)) for _ in range(self.small(0, 4)))
        if kind == 2:
            return self.pick([-8 * 10**18, 8 * 10**18, 2**62, -1, 2**63])
        return self.small(0, 4)

    def shape(self, rank: int) -> tuple:
        return tuple(self.small(0, 6) if axis == 0 else self.small(1, 6) if self.small(0, 15) else 0
                     for axis in range(rank))

    def array(self, shape: tuple) -> np.ndarray:
        dtype = self.pick(DTYPES)
        values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 7 - 3
        if values.size and self.small(0, 3) == 0:
            values.flat[self.small(0, values.size - 1)] = self.pick([np.nan, np.inf, -np.inf, 1e38, -0.0])
        with np.errstate(all="ignore"):
            return values.astype(dtype)

    def rank(self) -> int:
        return self.pick([3, 4, 4, 4, 5, 2, 6, 1])


def fuzz_conv(a: Args):
    rank = a.rank()
    x = a.array(a.shape(rank))
    w = a.array(tuple(a.small(1, 4) for _ in range(rank - 2)) + (a.small(0, 4), a.small(0, 5)))
    options = dict(stride=a.int_option(), padding=a.padding(), dilation=a.int_option(), groups=a.int_option())
    op = a.small(0, 4)
    if op == 0:
        ops.conv(x, w, padding_mode=a.pick(["zeros", "reflect", "replicate", "circular", "mirror"]), **options)
    elif op == 1:
        y = ops.conv(x, w, **options)
        ops.conv_backward(a.array(y.shape if a.small(0, 3) else a.shape(y.ndim)), x, w, **options)
    elif op == 2:
        ops.conv_transpose(x, w, output_padding=a.int_option(), **options)
    elif op == 3:
        y = ops.conv_transpose(x, w, **options)
        ops.conv_transpose_backward(a.array(y.shape), x, w, **options)
    else:
        channels = x.shape[-1] if x.ndim else 1
        dw = a.array(tuple(a.small(1, 3) for _ in range(rank - 2)) + (1, channels * a.small(1, 2)))
        ops.separable_conv(x, dw, a.array((1,) * (rank - 2) + (dw.shape[-1], a.small(1, 3))),
                           stride=options["stride"], padding=options["padding"])


def fuzz_pool(a: Args):
    x = a.array(a.shape(a.rank()))
    op = a.small(0, 4)
    options = dict(stride=a.pick([None, a.int_option()]), padding=a.padding(), ceil_mode=a.pick([False, True]))
    if op == 0:
        y, idx = ops.max_pool(x, a.int_option(), dilation=a.int_option(), return_indices=True, **options)
        assert idx.size == 0 or (idx.min() >= 0 and idx.max() < np.prod(x.shape[1:-1])), "max_pool index out of range"
    elif op == 1:
        size = a.int_option()
        y = ops.avg_pool(x, size, **options)
        ops.avg_pool_backward(a.array(y.shape), x.shape, size, **options)
    elif op == 2:
        ops.adaptive_max_pool(x, a.int_option(), return_indices=a.pick([False, True]))
    elif op == 3:
        out = a.int_option()
        y = ops.adaptive_avg_pool(x, out)
        ops.adaptive_avg_pool_backward(a.array(y.shape), x.shape, out)
    else:
        y, idx = ops.max_pool(x, 2, return_indices=True)
        ops.max_pool_backward(a.array(y.shape), x, 2, indices=idx + a.pick([0, 0, 1, -1, 2**40]))


def fuzz_norm(a: Args):
    x = a.array(a.shape(a.rank()))
    channels = x.shape[-1] if x.ndim else 1
    op = a.small(0, 3)
    if op == 0:
        y, stats = ops.batch_norm(x, a.array((a.pick([channels, channels, 1, 0]),)), eps=a.pick([1e-5, 0.0, -1.0]))
        ops.batch_norm_backward(a.array(y.shape), x, None, stats.mean, stats.inv_std)
    elif op == 1:
        ops.group_norm(x, a.int_option())
    elif op == 2:
        ops.layer_norm(x, a.int_option())
    else:
        ops.local_response_norm(x, a.int_option())


def fuzz_gemm_and_losses(a: Args):
    op = a.small(0, 3)
    if op == 0:
        ops.gemm(a.array(a.shape(a.small(1, 3))), a.array(a.shape(a.small(1, 3))),
                 transpose_a=a.pick([False, True]), transpose_b=a.pick([False, True]),
                 alpha=a.pick([1.0, float("nan"), 0.0, 1e300]))
    elif op == 1:
        logits = a.array(a.shape(a.small(1, 4)))
        labels = np.asarray([a.pick(BOUNDARY_INTS + [-100]) for _ in range(a.small(0, 6))])
        ops.softmax_cross_entropy(logits, labels.reshape(logits.shape[:-1]) if labels.size == np.prod(
            logits.shape[:-1]) else labels, label_smoothing=a.pick([0.0, 0.1, 1.5]))
    elif op == 2:
        shape = a.shape(a.small(1, 4))
        ops.mse_loss(a.array(shape), a.array(shape if a.small(0, 3) else a.shape(len(shape))),
                     reduction=a.pick(["mean", "sum", "none", "avg"]))
    else:
        ops.nll_loss(a.array(a.shape(2)), np.asarray([a.pick(BOUNDARY_INTS) for _ in range(a.small(0, 6))]))


FAMILIES = [fuzz_conv, fuzz_pool, fuzz_norm, fuzz_gemm_and_losses]


def test_one_input(data: bytes) -> None:
    a = Args(data)
    try:
        a.pick(FAMILIES)(a)
    except EXPECTED:
        pass


def main() -> None:
    convkit.set_workspace_limit(64 * 2**20)  # keep a generated problem from eating the machine
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
