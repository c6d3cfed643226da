"""Depthwise convolution layers: convkit's dwconv kernels against PyTorch, and against the copy roof.

    python benchmarks/bench_depthwise.py                       # MobileNet-0.25's 9 depthwise layers + the conv suite's
    python benchmarks/bench_depthwise.py --threads 1 --layers mb-8x128,suite-56x128
    python benchmarks/bench_depthwise.py --quick --json        # tiny shapes (the test suite runs this)

Each layer is a 3x3 depthwise convolution, float32, padding "same", no bias (MobileNet's are followed by
BatchNorm), channels-last for convkit. Passes: fwd (ops.conv2d), bwd-x and bwd-w (ops.conv_backward with
need="x" / need="w"), f+b (forward, then dx and dw in one conv_backward). Bytes are the compulsory traffic,
every array read or written once (S = bytes of x, So of y): fwd S + So, bwd-x So + S, bwd-w So + S, f+b
3 (S + So); % roof is against convkit._C.bench_stream_copy of S bytes on the same threads (2 S moved per
copy). The peer is PyTorch (torch.nn.functional.conv2d with groups = C, fwd and f+b through autograd), timed
in NCHW and channels_last, the faster reported; ratio = peer time / convkit time. Every layer's y, dx and
dw are checked against the peer's before timing. Times are the fastest of --repeats calls over two rounds
alternating convkit and the peer, after a settle pause: on a loaded machine the minimum moves least.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import common


@dataclass(frozen=True)
class Layer:
    name: str
    batch: int
    size: int  # H = W
    channels: int
    stride: int


LAYERS = [  # MobileNet v1, alpha 0.25, batch 16, 128x128 input; then bench_conv.py's depthwise layer
    Layer("mb-64x8", 16, 64, 8, 1), Layer("mb-64x16-s2", 16, 64, 16, 2), Layer("mb-32x32", 16, 32, 32, 1),
    Layer("mb-32x32-s2", 16, 32, 32, 2), Layer("mb-16x64", 16, 16, 64, 1), Layer("mb-16x64-s2", 16, 16, 64, 2),
    Layer("mb-8x128", 16, 8, 128, 1), Layer("mb-8x128-s2", 16, 8, 128, 2), Layer("mb-4x256", 16, 4, 256, 1),
    Layer("suite-56x128", 8, 56, 128, 1),
]


def fastest(call, repeats: int) -> float:
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--layers", help=f"comma-separated names (default: all of {[l.name for l in LAYERS]})")
    parser.add_argument("--quick", action="store_true", help="batch 2 and maps of at most 8x8")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    layers = common.select(args.layers, LAYERS, "--layers", parser)
    common.pin_threads(args.threads)
    import numpy as np
    import torch
    import torch.nn.functional as F

    import convkit
    from convkit import _C, ops

    convkit.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers:
        print(f"# {layer.name}", file=sys.stderr, flush=True)
        n, size = (2, min(layer.size, 8)) if args.quick else (layer.batch, layer.size)
        c, s = layer.channels, layer.stride
        x = rng.standard_normal((n, size, size, c), dtype=np.float32)
        w = rng.standard_normal((3, 3, 1, c), dtype=np.float32)
        options = dict(stride=s, padding="same", groups=c)
        y = ops.conv2d(x, w, **options)
        dy = rng.standard_normal(y.shape, dtype=np.float32)

        def torch_case(memory_format):
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=memory_format).requires_grad_()
            wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()
            dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
            pad = (0, 1, 0, 1) if s == 2 and size % 2 == 0 else (1, 1, 1, 1)  # TensorFlow's "same"

            def forward():
                return F.conv2d(F.pad(xt, pad) if s == 2 else xt, wt, stride=s, padding=0 if s == 2 else 1, groups=c)

            def fwd():
                with torch.no_grad():
                    forward()

            def fb():
                return torch.autograd.grad(forward(), (xt, wt), dyt)
            return forward, fwd, fb

        forward, _, fb = torch_case(torch.contiguous_format)
        dx, dw, _ = ops.conv_backward(dy, x, w, need=("x", "w"), **options)
        tdx, tdw = fb()
        for name, got, want in [("y", y, forward().detach().permute(0, 2, 3, 1).numpy()),
                                ("dx", dx, tdx.permute(0, 2, 3, 1).numpy()),
                                ("dw", dw, tdw.permute(2, 3, 1, 0).numpy())]:
            scale = max(1.0, float(np.abs(want).max()))
            if not np.allclose(got, want, rtol=0, atol=1e-4 * scale):
                sys.exit(f"{layer.name}: {name} differs from PyTorch's by {float(np.abs(got - want).max())}")

        passes = {
            "fwd": lambda: ops.conv2d(x, w, **options),
            "bwd-x": lambda: ops.conv_backward(dy, x, w, need="x", **options),
            "bwd-w": lambda: ops.conv_backward(dy, x, w, need="w", **options),
            "f+b": lambda: (ops.conv2d(x, w, **options), ops.conv_backward(dy, x, w, need=("x", "w"), **options)),
        }
        peers = {fmt: torch_case(fmt) for fmt in (torch.contiguous_format, torch.channels_last)}
        best = {}
        for _ in range(2):
            for name, call in passes.items():
                common.settle()
                best[name] = min(best.get(name, float("inf")), fastest(call, args.repeats))
            for fmt, (_, fwd, fb) in peers.items():
                for name, call in (("peer fwd", fwd), ("peer f+b", fb)):
                    common.settle()
                    best[name, fmt] = min(best.get((name, fmt), float("inf")), fastest(call, args.repeats))
        peer = {name: min(best[name, fmt] for fmt in peers) for name in ("peer fwd", "peer f+b")}
        copy_gbps = 2 * x.nbytes / min(_C.bench_stream_copy(x.nbytes, args.threads, args.repeats)) / 1e9
        traffic = {"fwd": x.nbytes + y.nbytes, "bwd-x": x.nbytes + y.nbytes, "bwd-w": x.nbytes + y.nbytes,
                   "f+b": 3 * (x.nbytes + y.nbytes)}
        row = {"layer": layer.name, "problem": f"{n},{size},{size},{c} s{s}", "copy GB/s": copy_gbps}
        for name, seconds in ((k, best[k]) for k in passes):
            row[f"{name} ms"] = 1e3 * seconds
            row[f"{name} % roof"] = 100 * traffic[name] / seconds / 1e9 / copy_gbps
        row["peer fwd ms"], row["fwd ratio"] = 1e3 * peer["peer fwd"], peer["peer fwd"] / best["fwd"]
        row["peer f+b ms"], row["f+b ratio"] = 1e3 * peer["peer f+b"], peer["peer f+b"] / best["f+b"]
        rows.append(row)

    header = common.describe_machine(args.threads)
    header.update(peer=f"torch {torch.__version__}")
    summary = [{"layer": "geomean", **{k: common.geomean([r[k] for r in rows]) for k in ("fwd ratio", "f+b ratio")}}]
    columns = ["layer", "problem", "copy GB/s"] + [f"{p} {q}" for p in ("fwd", "bwd-x", "bwd-w", "f+b")
                                                   for q in ("ms", "% roof")]
    columns += ["peer fwd ms", "fwd ratio", "peer f+b ms", "f+b ratio"]
    common.print_table(rows, columns, args.json, header, summary)


if __name__ == "__main__":
    main()
