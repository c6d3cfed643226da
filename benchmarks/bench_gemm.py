"""SGEMM/DGEMM: convkit's GEMM timed in C++ (no Python overhead) against numpy.matmul (OpenBLAS), one run.

    python benchmarks/bench_gemm.py --threads 2
    python benchmarks/bench_gemm.py --threads 1 --json

Prints GFLOP/s, % of the FP32 FMA peak measured in the same run, and ratio = numpy time / convkit time
(> 1: convkit is faster). Shapes: squares 256..2048 and the GEMMs that convolution produces, in both the
orientation of the foundation issue (M = C_out) and the one convkit's channels-last conv uses (N = C_out).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

SQUARES = [(n, n, n, f"square {n}") for n in (256, 512, 1024, 2048)]
CONV_SHAPES = [
    (64, 3136 * 8, 576, "conv 3x3 64->64 @56x56 (M=C_out)"),
    (3136 * 8, 64, 576, "conv 3x3 64->64 @56x56 (N=C_out)"),
    (256, 196 * 8, 2304, "conv 3x3 256->256 @14x14 (M=C_out)"),
    (196 * 8, 256, 2304, "conv 3x3 256->256 @14x14 (N=C_out)"),
    (6, 784 * 64, 25, "LeNet conv1 5x5 1->6 (M=C_out)"),
    (784 * 64, 6, 25, "LeNet conv1 5x5 1->6 (N=C_out)"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    parser.add_argument("--quick", action="store_true", help="small shapes only (smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    common.pin_threads(args.threads)

    import numpy as np

    import convkit

    convkit.set_num_threads(args.threads)
    machine = common.describe_machine(args.threads)
    peak = convkit._C.fma_peak_gflops(args.threads)
    machine["fp32_peak_gflops"] = round(peak, 1)
    if not args.json:
        print(f"# GEMM {args.dtype}, {args.threads} thread(s), {machine['cpu']}, numpy {machine['numpy']}")
        print("\n".join(common.machine_lines(machine)))
        print(f"# measured FP32 FMA peak: {peak:.1f} GFLOP/s", flush=True)

    dtype = np.float32 if args.dtype == "f32" else np.float64
    shapes = [(64, 64, 64, "square 64"), (6, 2000, 25, "LeNet-like")] if args.quick else SQUARES + CONV_SHAPES
    rng = np.random.default_rng(0)
    rows = []
    for m, n, k, label in shapes:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        flops = 2.0 * m * n * k
        # Alternate the two peers so that noise from the shared machine hits both alike.
        ours, theirs = [], []
        for _ in range(2):
            common.settle()
            ours += convkit._C.bench_gemm(m, n, k, args.dtype, repeats=args.repeats)
            common.settle()
            theirs.append(common.median_seconds(lambda: np.matmul(a, b, out=out), args.repeats))
        t_ours, t_numpy = statistics.median(ours), statistics.median(theirs)
        row = {
            "shape": label,
            "m,n,k": f"{m},{n},{k}",
            "convkit GFLOP/s": flops / t_ours / 1e9,
            "% peak": 100 * flops / t_ours / 1e9 / peak if peak else float("nan"),
            "numpy GFLOP/s": flops / t_numpy / 1e9,
            "ratio": t_numpy / t_ours,
        }
        rows.append(row)
        if not args.json:
            print(f"#   {label}: {row['convkit GFLOP/s']:.1f} GFLOP/s, ratio {row['ratio']:.2f}", flush=True)
    common.print_table(rows, list(rows[0]), args.json, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
