"""Pooling and normalization: convkit's forward, backward and forward+backward passes in bytes per second,
against a STREAM-like copy measured in the same run and against PyTorch CPU.

    python benchmarks/bench_norm_pool.py --threads 2
    python benchmarks/bench_norm_pool.py --ops batchnorm,maxpool2 --repeats 5 --json
    python benchmarks/bench_norm_pool.py --quick        # tiny shapes (smoke test)

Ops, float32, each on x of shape (8, 56, 56, 64) and (8, 14, 14, 256) (N, H, W, C):
- batchnorm: BatchNorm in training mode (batch statistics), with gamma and beta;
- maxpool2: max pooling 2x2, stride 2; maxpool3: 3x3, stride 2, padding 1 (the ResNet stem's);
- avgpool2: average pooling 2x2, stride 2;
- layernorm: LayerNorm over the channels (normalized_ndim=1, as in ConvNeXt); groupnorm: 32 groups.

Passes: fwd is the forward pass (for max pooling, inference: no indices); bwd is the backward pass alone,
from saved state (the forward's statistics, or max pooling's int64 indices); f+b is a training step, the
forward pass (max pooling: with indices) then the backward pass.

Bytes (the compulsory traffic, each array read or written once; S = bytes of x, So = bytes of y):
  normalization  fwd: read x, write y = 2 S;      bwd: read dy and x, write dx = 3 S;   f+b: x, y, dy, dx = 4 S
  max pooling    fwd: read x, write y = S + So;   bwd: read dy, read int64 indices (2 So), write dx = S + 3 So;
                 f+b: read x, write y and indices, read dy and indices, write dx = 2 S + 6 So
  avg pooling    fwd: S + So;  bwd: read dy, write dx = S + So;  f+b: 2 S + 2 So
(gamma, beta and the statistics are C values: not counted). GB/s = those bytes / convkit's time.

Roof: convkit._C.bench_stream_copy, a C++/OpenMP copy b[i] = a[i] of S bytes (2 S moved), timed in this run
on --threads threads: "% roof" is convkit's GB/s against it. Both shapes fit a 32 MiB L3, so the copy of
the same size is the roof that applies; the header also gives the copy of 256 MiB (DRAM).

Peer: PyTorch (torch.nn.functional, autograd for the backward) with torch.set_num_threads(--threads). It is
timed in both NCHW and channels_last memory formats, and each pass reports the faster (the "torch layout"
column says which: fwd/bwd/f+b); LayerNorm over the last axis has one layout (NHWC contiguous). With
--peer numpy (or without PyTorch) the peer is float32 NumPy written below. ratio = peer time / convkit time
(> 1: convkit faster). Before timing, every output of f+b is checked against the peer's: max |convkit -
peer| <= 16 * eps(float32) * sqrt(n) * max |peer|, n the length of the sums behind the output.

Timing: the fastest of --repeats calls after a warm-up, over two rounds (one with --quick) alternating
convkit and each peer layout, with a 0.2 s pause before each (common.settle). The minimum, not the median:
see best_seconds. The copy roofs are measured first, before any peer runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

if TYPE_CHECKING:
    import numpy as np

TOLERANCE = 16  # in units of eps(float32) * sqrt(reduction length), relative to the peer's largest value
PASSES = ("fwd", "bwd", "f+b")
SHAPES = [(8, 56, 56, 64), (8, 14, 14, 256)]
QUICK_SHAPES = [(2, 12, 12, 32), (2, 6, 6, 64)]
DRAM_COPY_BYTES = 256 << 20
GROUPS = 32


@dataclasses.dataclass(frozen=True)
class Op:
    """One benchmarked operation: its kind ('norm', 'max', 'avg'), and pooling options."""

    name: str
    kind: str
    pool: int = 0
    stride: int = 0
    padding: int = 0

    def out_shape(self, shape: tuple) -> tuple:
        if self.kind == "norm":
            return shape
        n, h, w, c = shape
        out = [(s + 2 * self.padding - self.pool) // self.stride + 1 for s in (h, w)]
        return (n, *out, c)

    def bytes_moved(self, shape: tuple) -> dict:
        s, so = 4 * math.prod(shape), 4 * math.prod(self.out_shape(shape))
        if self.kind == "norm":
            return {"fwd": 2 * s, "bwd": 3 * s, "f+b": 4 * s}
        if self.kind == "max":
            return {"fwd": s + so, "bwd": s + 3 * so, "f+b": 2 * s + 6 * so}
        return {"fwd": s + so, "bwd": s + so, "f+b": 2 * s + 2 * so}

    def reductions(self, shape: tuple) -> int:
        """Length of the longest sums behind an output (for the agreement tolerance)."""
        n, h, w, c = shape
        return {"batchnorm": n * h * w, "layernorm": c, "groupnorm": h * w * c // GROUPS}.get(self.name, self.pool**2)

    def pool_options(self) -> dict:
        return {"stride": self.stride, "padding": self.padding}


OPS = [
    Op("batchnorm", "norm"),
    Op("maxpool2", "max", 2, 2, 0),
    Op("maxpool3", "max", 3, 2, 1),
    Op("avgpool2", "avg", 2, 2, 0),
    Op("layernorm", "norm"),
    Op("groupnorm", "norm"),
]


@dataclasses.dataclass(frozen=True)
class Problem:
    op: Op
    x: np.ndarray  # (N, H, W, C) float32
    dy: np.ndarray  # the output's shape
    gamma: np.ndarray  # (C,)
    beta: np.ndarray


def make_problem(op: Op, shape: tuple) -> Problem:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(op.out_shape(shape), dtype=np.float32)
    return Problem(op, x, dy, rng.standard_normal(shape[-1], dtype=np.float32),
                   rng.standard_normal(shape[-1], dtype=np.float32))


@dataclasses.dataclass(frozen=True)
class Passes:
    """One library's three timed calls on one problem; f+b returns its outputs channels-last."""

    fwd: Callable[[], object]
    bwd: Callable[[], object]
    fb: Callable[[], list]  # -> [y, dx, (dgamma, dbeta)]

    def call(self, pass_name: str) -> Callable[[], object]:
        return {"fwd": self.fwd, "bwd": self.bwd, "f+b": self.fb}[pass_name]


def convkit_passes(p: Problem) -> Passes:
    from convkit import ops

    op = p.op
    if op.kind == "norm":
        forward, backward, extra = {
            "batchnorm": (ops.batch_norm, ops.batch_norm_backward, ()),
            "layernorm": (ops.layer_norm, ops.layer_norm_backward, (1,)),
            "groupnorm": (ops.group_norm, ops.group_norm_backward, (GROUPS,)),
        }[op.name]
        _, stats = forward(p.x, *extra, p.gamma, p.beta)

        def fb() -> list:
            y, s = forward(p.x, *extra, p.gamma, p.beta)
            return [y, *backward(p.dy, p.x, *extra, p.gamma, *s)]

        return Passes(lambda: forward(p.x, *extra, p.gamma, p.beta),
                      lambda: backward(p.dy, p.x, *extra, p.gamma, *stats), fb)
    options = op.pool_options()
    if op.kind == "max":
        _, indices = ops.max_pool2d(p.x, op.pool, **options, return_indices=True)

        def max_fb() -> list:
            y, idx = ops.max_pool2d(p.x, op.pool, **options, return_indices=True)
            return [y, ops.max_pool_backward(p.dy, p.x, op.pool, **options, indices=idx)]

        return Passes(lambda: ops.max_pool2d(p.x, op.pool, **options),
                      lambda: ops.max_pool_backward(p.dy, p.x, op.pool, **options, indices=indices), max_fb)

    def avg_fb() -> list:
        return [ops.avg_pool2d(p.x, op.pool, **options), ops.avg_pool_backward(p.dy, p.x.shape, op.pool, **options)]

    return Passes(lambda: ops.avg_pool2d(p.x, op.pool, **options),
                  lambda: ops.avg_pool_backward(p.dy, p.x.shape, op.pool, **options), avg_fb)


def torch_layouts(op: Op) -> list[str]:
    return ["NHWC"] if op.name == "layernorm" else ["NCHW", "channels_last"]


def torch_passes(p: Problem, layout: str) -> Passes:
    import torch
    import torch.nn.functional as F

    op = p.op

    def tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        if layout == "NHWC":
            return t.clone()
        t = t.permute(0, 3, 1, 2)
        return t.contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)

    def to_channels_last(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy() if layout == "NHWC" or t.dim() != 4 else t.detach().permute(0, 2, 3, 1).numpy()

    x, dy = tensor(p.x).requires_grad_(), tensor(p.dy)
    gamma, beta = torch.from_numpy(p.gamma).requires_grad_(), torch.from_numpy(p.beta).requires_grad_()
    inputs = (x, gamma, beta) if op.kind == "norm" else (x,)
    forward: Callable[[], torch.Tensor] = {
        "batchnorm": lambda: F.batch_norm(x, None, None, gamma, beta, training=True),
        "layernorm": lambda: F.layer_norm(x, (x.shape[-1],), gamma, beta),
        "groupnorm": lambda: F.group_norm(x, GROUPS, gamma, beta),
        "max": lambda: F.max_pool2d(x, op.pool, op.stride, op.padding),
        "avg": lambda: F.avg_pool2d(x, op.pool, op.stride, op.padding),
    }[op.name if op.kind == "norm" else op.kind]
    graph = forward()  # kept for the backward pass alone (retain_graph)

    def fwd() -> torch.Tensor:
        with torch.no_grad():
            return forward()

    def fb() -> list:
        y = forward()
        return [to_channels_last(t) for t in (y, *torch.autograd.grad(y, inputs, dy))]

    return Passes(fwd, lambda: torch.autograd.grad(graph, inputs, dy, retain_graph=True), fb)


def numpy_passes(p: Problem) -> Passes:
    """float32 NumPy: reductions with keepdims for the norms, one strided view per window tap for pooling."""
    import numpy as np

    op, x, dy = p.op, p.x, p.dy
    if op.kind == "norm":
        n, h, w, c = x.shape
        # The norm as statistics over axis 1 of a 3-D view (samples, values, channels-in-statistic).
        view = {"batchnorm": (1, n * h * w, c), "layernorm": (n * h * w, 1, c), "groupnorm": (n, h * w, c)}[op.name]
        stat_axes = {"batchnorm": (1,), "layernorm": (1, 2), "groupnorm": (1, 3)}[op.name]

        def grouped(a: np.ndarray) -> np.ndarray:
            return a.reshape(n, h * w, GROUPS, c // GROUPS) if op.name == "groupnorm" else a.reshape(view)

        def forward():
            xv = grouped(x)
            mean = xv.mean(axis=stat_axes, keepdims=True)
            inv_std = 1 / np.sqrt(xv.var(axis=stat_axes, keepdims=True) + np.float32(1e-5))
            xhat = ((xv - mean) * inv_std).reshape(x.shape)
            return xhat * p.gamma + p.beta, xhat, inv_std

        def backward(xhat, inv_std):
            dxhat, xhat_v = grouped(dy * p.gamma), grouped(xhat)
            dx = inv_std * (dxhat - dxhat.mean(axis=stat_axes, keepdims=True)
                            - xhat_v * (dxhat * xhat_v).mean(axis=stat_axes, keepdims=True))
            return [dx.reshape(x.shape), (dy * xhat).reshape(-1, c).sum(axis=0), dy.reshape(-1, c).sum(axis=0)]

        state = forward()

        def norm_fb() -> list:
            y, xhat, inv_std = forward()
            return [y, *backward(xhat, inv_std)]

        return Passes(lambda: forward()[0], lambda: backward(*state[1:]), norm_fb)

    k, s, pad = op.pool, op.stride, op.padding
    oh, ow = op.out_shape(x.shape)[1:3]
    taps = [(slice(None), slice(i, i + s * (oh - 1) + 1, s), slice(j, j + s * (ow - 1) + 1, s)) for i in range(k)
            for j in range(k)]
    fill = -np.inf if op.kind == "max" else 0.0
    padded_shape = (x.shape[0], x.shape[1] + 2 * pad, x.shape[2] + 2 * pad, x.shape[3])
    crop = (slice(None), slice(pad, pad + x.shape[1]), slice(pad, pad + x.shape[2]))

    def windows() -> np.ndarray:  # (taps, N, OH, OW, C)
        xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=fill)
        return np.stack([xp[t] for t in taps])

    def scatter(share: Callable[[int], np.ndarray]) -> np.ndarray:
        dxp = np.zeros(padded_shape, np.float32)
        for t, window in enumerate(taps):
            dxp[window] += share(t)
        return dxp[crop]

    if op.kind == "max":
        def max_forward():
            stacked = windows()
            return stacked.max(axis=0), stacked.argmax(axis=0)

        argmax = max_forward()[1]

        def max_fb() -> list:
            y, arg = max_forward()
            return [y, scatter(lambda t: np.where(arg == t, dy, np.float32(0)))]

        return Passes(lambda: windows().max(axis=0), lambda: scatter(lambda t: np.where(argmax == t, dy, 0)),
                      max_fb)
    share = dy / np.float32(k * k)  # count_include_pad, no padding here
    return Passes(lambda: windows().mean(axis=0), lambda: scatter(lambda t: share),
                  lambda: [windows().mean(axis=0), scatter(lambda t: share)])


def check_agreement(p: Problem, ours: list, theirs: list) -> None:
    """Stop the run unless every output of convkit's f+b matches the peer's (see the module docstring)."""
    import numpy as np

    allowed_units = TOLERANCE * float(np.finfo(np.float32).eps) * math.sqrt(p.op.reductions(p.x.shape))
    names = ["y", "dx", "dgamma", "dbeta"]
    for name, a, b in zip(names, ours, theirs):
        if a.shape != b.shape:
            raise SystemExit(f"bench_norm_pool: {p.op.name}: convkit's {name} has shape {a.shape}, the peer's {b.shape}")
        error, scale = float(np.max(np.abs(a - b))), float(np.max(np.abs(b)))
        if not error <= allowed_units * scale:
            raise SystemExit(f"bench_norm_pool: {p.op.name} {p.x.shape}: convkit's {name} differs from the peer's by "
                             f"up to {error:.3g} (allowed {allowed_units * scale:.3g}, largest |{name}| {scale:.3g})")


@dataclasses.dataclass(frozen=True)
class Settings:
    peer: str  # 'torch' or 'numpy'
    repeats: int
    rounds: int
    threads: int


def peer_passes(p: Problem, settings: Settings) -> dict[str, Passes]:
    if settings.peer == "numpy":
        return {"numpy": numpy_passes(p)}
    return {layout: torch_passes(p, layout) for layout in torch_layouts(p.op)}


def best_seconds(call: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` calls after a warm-up. On a shared machine other work only ever adds time,
    and a 2-thread team waits for a descheduled member for a whole time slice: the minimum is the stable
    statistic for calls of a few hundred microseconds (medians swung 10x with other jobs running)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def time_alternating(calls: Sequence[Callable[[], object]], settings: Settings) -> list[float]:
    """Best seconds of each call over rounds that alternate them, settling before each."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(settings.rounds):
        for call, record in zip(calls, times):
            common.settle()
            record.append(best_seconds(call, settings.repeats))
    return [min(t) for t in times]


def copy_roof(bytes_: int, settings: Settings) -> float:
    """GB/s of the C++ STREAM-like copy of bytes_ bytes (2 * bytes_ moved per copy): the fastest of 50
    copies in each of three tries, settling before each (measured before any peer has run)."""
    import convkit

    fastest = math.inf
    for _ in range(3):
        common.settle()
        fastest = min(fastest, *convkit._C.bench_stream_copy(bytes_, settings.threads, 50))
    return 2 * bytes_ / fastest / 1e9


def measure(op: Op, shape: tuple, roof: float, settings: Settings) -> dict:
    """Check one (op, shape) against the peer, then time its three passes: one result row. roof: the copy
    GB/s for x's size."""
    p = make_problem(op, shape)
    ours, peers = convkit_passes(p), peer_passes(p, settings)
    first_peer = next(iter(peers.values()))
    check_agreement(p, ours.fb(), first_peer.fb())
    row = {"op": op.name, "shape": ",".join(map(str, shape)), "copy GB/s": roof}
    layouts = []
    moved = op.bytes_moved(shape)
    for pass_name in PASSES:
        seconds = time_alternating([ours.call(pass_name), *(passes.call(pass_name) for passes in peers.values())],
                                   settings)
        mine, best = seconds[0], min(seconds[1:])
        layouts.append(list(peers)[seconds[1:].index(best)])
        row[f"{pass_name} GB/s"] = moved[pass_name] / mine / 1e9
        row[f"{pass_name} % roof"] = 100 * moved[pass_name] / mine / 1e9 / roof
        row[f"{pass_name} ratio"] = best / mine
    row["peer layout"] = "/".join(layouts)
    return row


def summarise(rows: Sequence[dict]) -> list[dict]:
    ratio_columns = [f"{p} ratio" for p in PASSES]
    return [
        {"op": "geomean", **{c: common.geomean([row[c] for row in rows]) for c in ratio_columns}},
        {"op": "min", **{c: min(row[c] for row in rows) for c in ratio_columns}},
    ]


def choose_peer(choice: str, threads: int) -> tuple[str, str]:
    """(peer, description for the header): PyTorch when installed (unless --peer numpy), else NumPy."""
    import numpy as np

    if choice != "numpy":
        try:
            import torch
        except ImportError:
            if choice == "torch":
                raise SystemExit("bench_norm_pool: --peer torch, but PyTorch is not installed") from None
        else:
            torch.set_num_threads(threads)
            return "torch", f"torch {torch.__version__}, NCHW and channels_last (the faster per pass), autograd"
    why = "chosen with --peer numpy" if choice == "numpy" else "PyTorch is not installed"
    return "numpy", f"numpy {np.__version__} float32, channels-last ({why})"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per round, after a warm-up (default 15)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (smoke test, seconds)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--ops", help=f"comma-separated ops (default: all of {', '.join(op.name for op in OPS)})")
    parser.add_argument("--peer", choices=["auto", "torch", "numpy"], default="auto",
                        help="auto (default): PyTorch when installed, else NumPy")
    args = parser.parse_args(argv)
    ops_chosen = common.select(args.ops, OPS, "--ops", parser)
    common.pin_threads(args.threads)

    import convkit

    convkit.set_num_threads(args.threads)
    peer, peer_name = choose_peer(args.peer, args.threads)
    settings = Settings(peer, args.repeats, rounds=1 if args.quick else 2, threads=args.threads)
    machine = common.describe_machine(args.threads)
    dram = copy_roof(1 << 20 if args.quick else DRAM_COPY_BYTES, settings)
    machine.update({"peer": peer_name, "dram_copy_gbps": round(dram, 1)})
    if not args.json:
        print(f"# pooling and normalization, float32, {args.threads} thread(s), {machine['cpu']}, convkit "
              f"{machine['convkit']}{', quick (tiny shapes)' if args.quick else ''}")
        print("\n".join(common.machine_lines(machine)))
        print(f"# peer: {peer_name}; ratio = peer time / convkit time (> 1: convkit faster)")
        print(f"# STREAM-like copy: {dram:.1f} GB/s for {'1 MiB' if args.quick else '256 MiB'} (DRAM); "
              "'% roof' is against the copy of x's size (copy GB/s)", flush=True)

    shapes = QUICK_SHAPES if args.quick else SHAPES
    roofs = {shape: copy_roof(4 * math.prod(shape), settings) for shape in shapes}
    jobs = [(op, shape) for op in ops_chosen for shape in shapes]
    rows = []
    for i, (op, shape) in enumerate(jobs, 1):
        row = measure(op, shape, roofs[shape], settings)
        rows.append(row)
        print(f"[{i}/{len(jobs)}] {op.name} {shape}: " + ", ".join(
            f"{p} {row[f'{p} GB/s']:.1f} GB/s x{row[f'{p} ratio']:.2f}" for p in PASSES)
            + f" (copy {row['copy GB/s']:.1f} GB/s, peer {row['peer layout']})", file=sys.stderr, flush=True)
    common.print_table(rows, list(rows[0]), args.json, machine, summarise(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
