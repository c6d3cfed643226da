"""convkit quick start: the build you got, and the GEMM every convolution runs on.

    python examples/quickstart.py [--size N]
"""
import argparse
import time

import numpy as np

import convkit
from convkit import ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="square matrix size (default 1024)")
    args = parser.parse_args()

    convkit.show_config()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.size, args.size), dtype=np.float32)
    b = rng.standard_normal((args.size, args.size), dtype=np.float32)

    seconds = float("inf")
    for _ in range(3):  # best of three: the first call also allocates the packing buffers
        start = time.perf_counter()
        c = ops.matmul(a, b)
        seconds = min(seconds, time.perf_counter() - start)
    reference = a.astype(np.float64) @ b.astype(np.float64)
    print(f"\nmatmul {args.size}x{args.size}: {2 * args.size**3 / seconds / 1e9:.1f} GFLOP/s, "
          f"max |error| vs float64 = {np.abs(c - reference).max():.2e}")

    # The fused epilogue a convolution layer uses: relu(x @ w + bias) in one pass over the output.
    x = rng.standard_normal((8, 27), dtype=np.float32)  # 8 pixels x (3x3 window x 3 channels)
    w = rng.standard_normal((27, 4), dtype=np.float32)  # -> 4 output channels
    bias = np.array([0.0, 0.5, -0.5, 1.0], dtype=np.float32)
    y = ops.gemm(x, w, bias=bias, activation="relu")
    print("relu(x @ w + bias) for the first pixel:", np.round(y[0], 3))


if __name__ == "__main__":
    main()
