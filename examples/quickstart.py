"""convkit quick start: the build you got, the GEMM every convolution runs on, and one conv layer's
forward and backward pass checked against the float64 reference.

    python examples/quickstart.py [--size N]
"""
import argparse
import time

import numpy as np

import convkit
from convkit import ops, reference


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
    exact = a.astype(np.float64) @ b.astype(np.float64)
    print(f"\nmatmul {args.size}x{args.size}: {2 * args.size**3 / seconds / 1e9:.1f} GFLOP/s, "
          f"max |error| vs float64 = {np.abs(c - exact).max():.2e}")

    # The fused epilogue a convolution layer uses: relu(x @ w + bias) in one pass over the output.
    x = rng.standard_normal((8, 27), dtype=np.float32)  # 8 pixels x (3x3 window x 3 channels)
    w = rng.standard_normal((27, 4), dtype=np.float32)  # -> 4 output channels
    bias = np.array([0.0, 0.5, -0.5, 1.0], dtype=np.float32)
    y = ops.gemm(x, w, bias=bias, activation="relu")
    print("relu(x @ w + bias) for the first pixel:", np.round(y[0], 3))

    # One 3x3 "same" conv layer, channels-last: forward, then the gradients of all three inputs.
    images = rng.standard_normal((4, 32, 32, 16), dtype=np.float32)       # N, H, W, C_in
    kernel = rng.standard_normal((3, 3, 16, 32), dtype=np.float32) * 0.1  # kh, kw, C_in, C_out
    start = time.perf_counter()
    out = ops.conv2d(images, kernel, padding="same")
    dx, dw, db = ops.conv_backward(np.ones_like(out), images, kernel, padding="same")
    seconds = time.perf_counter() - start
    dx_ref, dw_ref, _ = reference.conv_backward_reference(np.ones(out.shape), images, kernel, padding="same")
    print(f"conv2d 3x3 16->32 on 4x32x32 forward + backward: {seconds * 1e3:.1f} ms, "
          f"max |error| of dw vs float64 = {np.abs(dw - dw_ref).max():.2e}")


if __name__ == "__main__":
    main()
