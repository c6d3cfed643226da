"""Convolution layers: convkit's forward and forward+backward passes against PyTorch CPU, in one run.

    python benchmarks/bench_conv.py --threads 2
    python benchmarks/bench_conv.py --layers conv3x3,lenet5x5 --repeats 3 --json
    python benchmarks/bench_conv.py --quick        # tiny versions of the same layers (smoke test)

Measured per layer, float32:
- forward: y = conv(x, w) + b;
- forward+backward: the forward pass, then the gradients of x, w and b for a given dy.
Each time is the median of --repeats calls after a warm-up call, in two rounds (one with --quick) that
alternate the two libraries, so that noise on this shared machine hits both alike; settle() pauses before each.

convkit runs channels-last, x (N, *spatial, C) and w (*kernel, C_in/groups, C_out), through convkit.ops.conv
and convkit.ops.conv_backward. PyTorch gets the same problem in its native NCHW layout
(torch.nn.functional.conv1d/2d/3d under no_grad for the forward; torch.autograd.grad for the gradients),
with torch.set_num_threads(--threads). Without PyTorch (or with --peer numpy) the peer is a float32
im2col + batched matmul (OpenBLAS) written below; the header names the peer used.

FLOPs: forward = 2 * N * prod(out_spatial) * C_out * prod(kernel) * C_in / groups; forward+backward counts
3x that (dx and dw each cost one forward pass; bias terms are not counted). % peak is against the FP32 FMA
peak measured in the same run (convkit._C.fma_peak_gflops). ratio = peer time / convkit time: above 1,
convkit is faster.

Before timing, every output (y, and dx, dw, db when the backward pass is measured) is checked against the
peer's: max |convkit - peer| may be at most 16 * eps(float32) * sqrt(n) * max |peer|, n being the length
of the sums behind that output. A mismatch stops the run: a benchmark of a wrong result is worthless.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

if TYPE_CHECKING:
    import numpy as np

TOLERANCE = 16  # in units of eps(float32) * sqrt(reduction length), relative to the peer's largest value
OUTPUTS = ("y", "dx", "dw", "db")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One convolution layer; the kernel, stride, padding and dilation are the same on every spatial axis."""

    name: str
    n: int
    c_in: int
    spatial: tuple[int, ...]
    c_out: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def taps(self) -> int:
        return self.kernel**self.rank

    @property
    def out_spatial(self) -> tuple[int, ...]:
        span = self.dilation * (self.kernel - 1) + 1
        return tuple((s + 2 * self.padding - span) // self.stride + 1 for s in self.spatial)

    @property
    def forward_flops(self) -> float:
        return 2.0 * self.n * math.prod(self.out_spatial) * self.c_out * self.taps * self.c_in / self.groups

    def options(self) -> dict:
        """Keyword options for convkit.ops.conv/conv_backward and torch.nn.functional.conv*d alike."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def reductions(self) -> tuple[int, ...]:
        """Length of the sums behind each of y, dx, dw, db."""
        pixels = self.n * math.prod(self.out_spatial)
        return (self.taps * self.c_in // self.groups, self.taps * self.c_out // self.groups, pixels, pixels)

    def describe(self) -> str:
        """As the shared README's layer table: "8,64,56,56 -> 64, 3x3, s1, p1" (plus d, g when not 1)."""
        text = f"{self.n},{self.c_in},{','.join(map(str, self.spatial))} -> {self.c_out}, "
        text += "x".join([str(self.kernel)] * self.rank)
        extras = {"s": self.stride, "p": self.padding, "d": self.dilation, "g": self.groups}
        return text + "".join(f", {k}{v}" for k, v in extras.items() if v != (0 if k == "p" else 1))

    def quick(self) -> Layer:
        """A tiny version of this layer, same kernel and options (groups shrink with the channels)."""
        return dataclasses.replace(self, n=2, c_in=min(self.c_in, 16), c_out=min(self.c_out, 16),
                                   groups=min(self.groups, 16), spatial=tuple(min(s, 12) for s in self.spatial))


LAYERS = [
    Layer("conv3x3", 8, 64, (56, 56), 64, 3, padding=1),
    Layer("conv1x1", 8, 256, (56, 56), 64, 1),
    Layer("stem7x7s2", 8, 3, (224, 224), 64, 7, stride=2, padding=3),
    Layer("conv3x3-256", 8, 256, (14, 14), 256, 3, padding=1),
    Layer("depthwise3x3", 8, 128, (56, 56), 128, 3, padding=1, groups=128),
    Layer("dilated3x3", 8, 64, (56, 56), 64, 3, padding=2, dilation=2),
    Layer("lenet5x5", 64, 6, (14, 14), 16, 5),
    Layer("conv3d", 8, 32, (16, 32, 32), 32, 3, padding=1),
    Layer("conv1d", 8, 64, (1024,), 64, 3, padding=1),
    Layer("conv3x3s2", 8, 64, (56, 56), 128, 3, stride=2, padding=1),
]


@dataclasses.dataclass(frozen=True)
class Problem:
    """The data of one layer, channels-last as convkit takes them."""

    layer: Layer
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    dy: np.ndarray


def make_problem(layer: Layer) -> Problem:
    import numpy as np  # here, not at the top: main() pins the BLAS threads before NumPy loads

    rng = np.random.default_rng(0)
    x = rng.standard_normal((layer.n, *layer.spatial, layer.c_in), dtype=np.float32)
    w = rng.standard_normal((*[layer.kernel] * layer.rank, layer.c_in // layer.groups, layer.c_out), np.float32)
    b = rng.standard_normal(layer.c_out, dtype=np.float32)
    dy = rng.standard_normal((layer.n, *layer.out_spatial, layer.c_out), dtype=np.float32)
    return Problem(layer, x, w, b, dy)


@dataclasses.dataclass(frozen=True)
class Passes:
    """One library's two timed calls on one problem, and how to read their results channels-last."""

    forward: Callable[[], list]  # -> [y]
    forward_backward: Callable[[], list]  # -> [y, dx, dw, db]
    to_channels_last: Callable[[list], list] = list


def convkit_passes(p: Problem) -> Passes:
    from convkit import ops

    options = p.layer.options()

    def forward() -> list:
        return [ops.conv(p.x, p.w, p.b, **options)]

    def forward_backward() -> list:
        y = ops.conv(p.x, p.w, p.b, **options)
        return [y, *ops.conv_backward(p.dy, p.x, p.w, **options, need=("x", "w", "b"))]

    return Passes(forward, forward_backward)


def torch_passes(p: Problem) -> Passes:
    import numpy as np
    import torch

    conv = getattr(torch.nn.functional, f"conv{p.layer.rank}d")
    options = p.layer.options()

    def nchw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))

    x, dy = nchw(p.x).requires_grad_(), nchw(p.dy)
    w = torch.from_numpy(np.ascontiguousarray(np.moveaxis(p.w, (-1, -2), (0, 1)))).requires_grad_()
    b = torch.from_numpy(p.b).requires_grad_()

    def forward() -> list:
        with torch.no_grad():
            return [conv(x, w, b, **options)]

    def forward_backward() -> list:
        y = conv(x, w, b, **options)
        return [y.detach(), *torch.autograd.grad(y, (x, w, b), dy)]

    def to_channels_last(results: list) -> list:
        moves = [(1, -1), (1, -1), ((0, 1), (-1, -2)), (0, 0)]  # y, dx, dw, db
        return [np.moveaxis(t.numpy(), *move) for t, move in zip(results, moves)]

    return Passes(forward, forward_backward, to_channels_last)


def numpy_passes(p: Problem) -> Passes:
    """float32 im2col, then one batched matmul over the groups per product; channels-last like convkit."""
    import numpy as np

    layer, groups, taps = p.layer, p.layer.groups, p.layer.taps
    n, c_in, c_out, out = layer.n, layer.c_in, layer.c_out, layer.out_spatial
    rows, c_in_group, c_out_group = n * math.prod(out), c_in // groups, c_out // groups
    pad = [(0, 0), *[(layer.padding, layer.padding)] * layer.rank, (0, 0)]
    windows = [  # per kernel offset: the samples of the padded x it meets, (N, *out, C)
        (slice(None), *(slice(o * layer.dilation, o * layer.dilation + (m - 1) * layer.stride + 1, layer.stride)
                        for o, m in zip(offset, out)), slice(None))
        for offset in np.ndindex(*[layer.kernel] * layer.rank)
    ]
    padded = (n, *[s + 2 * layer.padding for s in layer.spatial], c_in)
    crop = (slice(None), *[slice(layer.padding, layer.padding + s) for s in layer.spatial], slice(None))
    # (*kernel, C_in/g, C_out) -> (g, taps * C_in/g, C_out/g)
    w_groups = p.w.reshape(taps, c_in_group, groups, c_out_group).transpose(2, 0, 1, 3).reshape(groups, -1, c_out_group)

    def im2col() -> np.ndarray:  # (g, rows, taps * C_in/g)
        xp = np.pad(p.x, pad)
        cols = np.empty((n, *out, taps, c_in), np.float32)
        for tap, window in enumerate(windows):
            cols[..., tap, :] = xp[window]
        return cols.reshape(rows, taps, groups, c_in_group).transpose(2, 0, 1, 3).reshape(groups, rows, -1)

    def conv(cols: np.ndarray) -> np.ndarray:
        return np.matmul(cols, w_groups).transpose(1, 0, 2).reshape(*p.dy.shape) + p.b

    def forward() -> list:
        return [conv(im2col())]

    def forward_backward() -> list:
        cols = im2col()
        dy_groups = p.dy.reshape(rows, groups, c_out_group).transpose(1, 0, 2)
        dw = np.matmul(cols.transpose(0, 2, 1), dy_groups)
        dcols = np.matmul(dy_groups, w_groups.transpose(0, 2, 1))
        dcols = dcols.reshape(groups, rows, taps, c_in_group).transpose(1, 2, 0, 3).reshape(n, *out, taps, c_in)
        dxp = np.zeros(padded, np.float32)
        for tap, window in enumerate(windows):
            dxp[window] += dcols[..., tap, :]
        dw = dw.reshape(groups, taps, c_in_group, c_out_group).transpose(1, 2, 0, 3).reshape(p.w.shape)
        return [conv(cols), dxp[crop], dw, p.dy.reshape(rows, c_out).sum(axis=0)]

    return Passes(forward, forward_backward)


def choose_peer(choice: str, threads: int) -> tuple[str, Callable[[Problem], Passes]]:
    """(description for the header, passes factory) of the peer: PyTorch when installed, else NumPy."""
    import numpy as np

    if choice != "numpy":
        try:
            import torch
        except ImportError:
            if choice == "torch":
                raise SystemExit("bench_conv: --peer torch, but PyTorch is not installed") from None
        else:
            torch.set_num_threads(threads)
            return f"torch {torch.__version__}, NCHW, torch.nn.functional.conv*d + autograd", torch_passes
    why = "chosen with --peer numpy" if choice == "numpy" else "PyTorch is not installed"
    return f"numpy {np.__version__} float32 im2col + matmul, channels-last ({why})", numpy_passes


def check_agreement(layer: Layer, ours: list, theirs: list) -> None:
    """Stop the run unless every output of convkit matches the peer's (see the module docstring)."""
    import numpy as np

    eps = float(np.finfo(np.float32).eps)
    for name, a, b, reduction in zip(OUTPUTS, ours, theirs, layer.reductions()):
        if a.shape != b.shape:
            raise SystemExit(f"bench_conv: {layer.name}: convkit's {name} has shape {a.shape}, the peer's {b.shape}")
        error, scale = float(np.max(np.abs(a - b))), float(np.max(np.abs(b)))
        allowed = TOLERANCE * eps * math.sqrt(reduction) * scale
        if not error <= allowed:
            raise SystemExit(f"bench_conv: {layer.name} ({layer.describe()}): convkit's {name} differs from the "
                             f"peer's by up to {error:.3g} (allowed {allowed:.3g}, largest |{name}| {scale:.3g})")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How every layer of one run is measured."""

    peer: Callable[[Problem], Passes]
    backward: bool
    repeats: int  # timed calls per round, after a warm-up call
    rounds: int  # alternations of convkit and the peer
    peak: float  # FP32 FMA peak, GFLOP/s


def time_alternating(
    ours: Callable[[], object], theirs: Callable[[], object], settings: Settings
) -> tuple[float, float]:
    """Median seconds of each call over rounds that alternate the two, settling before each."""
    times: tuple[list, list] = ([], [])
    for _ in range(settings.rounds):
        for call, record in zip((ours, theirs), times):
            common.settle()
            record.append(common.median_seconds(call, settings.repeats))
    return statistics.median(times[0]), statistics.median(times[1])


def measure(layer: Layer, settings: Settings) -> dict:
    """Check one layer against the peer, then time it: one result row."""
    problem = make_problem(layer)
    ours, theirs = convkit_passes(problem), settings.peer(problem)
    pass_name = "forward_backward" if settings.backward else "forward"
    check_agreement(layer, getattr(ours, pass_name)(), theirs.to_channels_last(getattr(theirs, pass_name)()))

    forward = time_alternating(ours.forward, theirs.forward, settings)
    both = time_alternating(ours.forward_backward, theirs.forward_backward, settings) if settings.backward else None
    return {
        "layer": layer.name,
        "problem": layer.describe(),
        **pass_columns("fwd", layer.forward_flops, forward, settings.peak),
        **pass_columns("f+b", 3 * layer.forward_flops, both, settings.peak),
    }


def pass_columns(label: str, flops: float, seconds: tuple[float, float] | None, peak: float) -> dict:
    """convkit's GFLOP/s and % of peak, the peer's GFLOP/s, and the ratio, from (convkit, peer) seconds;
    all None (n/a) for a pass that was not timed."""
    names = [f"convkit {label} GF/s", f"{label} % peak", f"peer {label} GF/s", f"{label} ratio"]
    if seconds is None:
        return dict.fromkeys(names)
    ours, theirs = seconds
    return dict(zip(names, [flops / ours / 1e9, 100 * flops / ours / 1e9 / peak, flops / theirs / 1e9, theirs / ours]))


def summarise(rows: Sequence[dict]) -> list[dict]:
    """A geomean row over every number column and a min row for the ratios (n/a where nothing was timed)."""
    numeric = [column for column, value in rows[0].items() if isinstance(value, float) or value is None]

    def over(column: str, reduce: Callable[[list], float]) -> float | None:
        values = [row[column] for row in rows if row[column] is not None]
        return reduce(values) if values else None

    return [
        {"layer": "geomean", **{column: over(column, common.geomean) for column in numeric}},
        {"layer": "min", **{column: over(column, min) for column in numeric if column.endswith("ratio")}},
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per round, after a warm-up (default 7)")
    parser.add_argument("--quick", action="store_true", help="tiny versions of the layers (smoke test, seconds)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--layers", help="comma-separated layer names or 1-based indices (default: all)")
    parser.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    parser.add_argument("--peer", choices=["auto", "torch", "numpy"], default="auto",
                        help="auto (default): PyTorch when installed, else the NumPy im2col baseline")
    args = parser.parse_args(argv)
    layers = common.select(args.layers, LAYERS, "--layers", parser, by_index=True)
    common.pin_threads(args.threads)

    import convkit

    convkit.set_num_threads(args.threads)
    peer_name, peer = choose_peer(args.peer, args.threads)
    backward = not args.no_backward and hasattr(convkit.ops, "conv_backward")
    if backward:
        backward_note = "gradients of x, w and b (convkit.ops.conv_backward), counted as 3x the forward FLOPs"
    else:
        backward_note = "n/a (--no-backward)" if args.no_backward else "n/a (this convkit has no ops.conv_backward)"

    machine = common.describe_machine(args.threads)
    peak = convkit._C.fma_peak_gflops(args.threads)
    machine.update({"fp32_peak_gflops": round(peak, 1), "peer": peer_name, "backward": backward})
    if not args.json:
        print(f"# conv float32, {args.threads} thread(s), {machine['cpu']}, convkit {machine['convkit']}, "
              f"numpy {machine['numpy']}{', quick (tiny layers)' if args.quick else ''}")
        print(f"# peer: {peer_name}")
        print(f"# measured FP32 FMA peak: {peak:.1f} GFLOP/s; kernels: {machine['kernels']}")
        print(f"# f+b: {backward_note}; ratio = peer time / convkit time (> 1: convkit faster)", flush=True)

    # One round is enough for the smoke test; two let the shared machine's noise hit both libraries alike.
    settings = Settings(peer, backward, args.repeats, rounds=1 if args.quick else 2, peak=peak)
    rows = []
    for i, layer in enumerate(layers, 1):
        row = measure(layer.quick() if args.quick else layer, settings)
        rows.append(row)
        fb = f", f+b {row['convkit f+b GF/s']:.1f} GF/s x{row['f+b ratio']:.2f}" if backward else ""
        print(f"[{i}/{len(layers)}] {layer.name} ({row['problem']}): fwd {row['convkit fwd GF/s']:.1f} GF/s "
              f"x{row['fwd ratio']:.2f}{fb}", file=sys.stderr, flush=True)
    common.print_table(rows, list(rows[0]), args.json, machine, summarise(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
