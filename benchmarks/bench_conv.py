"""Convolution layers: convkit's forward and forward+backward passes against every peer installed, in one run.

    python benchmarks/bench_conv.py --threads 2
    python benchmarks/bench_conv.py --layers conv3x3,lenet5x5 --repeats 3 --json
    python benchmarks/bench_conv.py --quick        # tiny versions of the same layers (smoke test)

Measured per layer, float32:
- forward: y = conv(x, w) + b;
- forward+backward: the forward pass, then the gradients of x, w and b for a given dy.

convkit runs channels-last, x (N, *spatial, C) and w (*kernel, C_in/groups, C_out), through convkit.ops.conv
and convkit.ops.conv_backward. The peers, each in the same run and only when installed (--peers):
- torch: PyTorch CPU, torch.nn.functional.conv1d/2d/3d (no_grad for the forward, torch.autograd.grad for the
  gradients), torch.set_num_threads(--threads), timed in NCHW and in channels_last (channels_last_3d) memory
  format: each pass reports the faster (column "torch layout", fwd/f+b; conv1d has NCL only);
- numpy: the float32 im2col + batched matmul (OpenBLAS) written below, channels-last; always measured. It is
  slow, so it gets --numpy-repeats timed calls (default 1) in one round, without a warm-up call beyond the
  correctness check's;
- tf: TensorFlow, tf.nn.convolution (tf.nn.depthwise_conv2d for depthwise layers) in NHWC after an explicit
  tf.pad, in a tf.function, gradients by tf.GradientTape, intra-op threads = --threads. Skipped cleanly when
  tensorflow does not import (Keras 3 on the torch backend is PyTorch, not a separate peer).
convkit and the torch and tf layouts are timed in two rounds (one with --quick) that alternate them, so that
noise on this shared machine hits all alike, each the median of --repeats calls after a warm-up call, with
common.settle()'s pause before each (not with --quick).

FLOPs: forward = 2 * N * prod(out_spatial) * C_out * prod(kernel) * C_in / groups; forward+backward counts
3x that (dx and dw each cost one forward pass; bias terms are not counted). % peak is against the FP32 FMA
peak measured in the same run (convkit._C.fma_peak_gflops). "ratio PEER" = peer time / convkit time: above
1, convkit is faster. Under the table: the geomean and the minimum of every ratio, and whether convkit is at
least 20x faster than the NumPy reference on every layer (the issue's target).

Before timing, every output (y, and dx, dw, db when the backward pass is measured) of every peer and layout
is checked against convkit's: max |convkit - peer| may be at most 16 * eps(float32) * sqrt(n) * max |peer|,
n being the length of the sums behind that output. A mismatch stops the run: a benchmark of a wrong result
is worthless.
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


def torch_layouts(layer: Layer) -> list[str]:
    """PyTorch's memory formats for this layer: channels_last exists for 2-D and 3-D convolutions only."""
    return ["NCHW"] if layer.rank == 1 else ["NCHW", "channels_last"]


def torch_passes(p: Problem, layout: str) -> Passes:
    """PyTorch on NCHW tensors (x, w and dy) stored contiguously ("NCHW") or channels-last ("channels_last")."""
    import numpy as np
    import torch

    conv = getattr(torch.nn.functional, f"conv{p.layer.rank}d")
    options = p.layer.options()
    memory_format = torch.contiguous_format
    if layout == "channels_last":
        memory_format = torch.channels_last if p.layer.rank == 2 else torch.channels_last_3d

    def tensor(a: np.ndarray) -> torch.Tensor:  # already moved to (N or C_out, C, *spatial)
        return torch.from_numpy(np.ascontiguousarray(a)).contiguous(memory_format=memory_format)

    x, dy = tensor(np.moveaxis(p.x, -1, 1)).requires_grad_(), tensor(np.moveaxis(p.dy, -1, 1))
    w = tensor(np.moveaxis(p.w, (-1, -2), (0, 1))).requires_grad_()
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


def tf_passes(p: Problem) -> Passes:
    """TensorFlow in NHWC: explicit zero padding, then a VALID convolution (depthwise layers: depthwise_conv2d
    with the channel multiplier C_out / C_in, whose output channel c * multiplier + m is convkit's too)."""
    import tensorflow as tf

    layer = p.layer
    depthwise = layer.groups > 1 and layer.groups == layer.c_in
    if layer.groups > 1 and not (depthwise and layer.rank == 2):
        raise SystemExit(f"bench_conv: {layer.name}: the tf peer runs groups only as a 2-D depthwise convolution")
    x, dy, b = tf.constant(p.x), tf.constant(p.dy), tf.constant(p.b)
    w_shape = (*p.w.shape[:-2], layer.c_in, layer.c_out // layer.c_in) if depthwise else p.w.shape
    w = tf.constant(p.w.reshape(w_shape))
    padding = [[0, 0], *[[layer.padding] * 2] * layer.rank, [0, 0]]

    def conv(x, w, b):
        padded = tf.pad(x, padding) if layer.padding else x
        if depthwise:
            y = tf.nn.depthwise_conv2d(padded, w, [1, layer.stride, layer.stride, 1], "VALID",
                                       dilations=[layer.dilation] * 2)
        else:
            y = tf.nn.convolution(padded, w, layer.stride, "VALID", dilations=layer.dilation)
        return y + b

    @tf.function
    def forward():
        return [conv(x, w, b)]

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([x, w, b])
            y = conv(x, w, b)
        return [y, *tape.gradient(y, [x, w, b], output_gradients=dy)]

    def to_channels_last(results: list) -> list:
        arrays = [t.numpy() for t in results]
        if len(arrays) == 4:
            arrays[2] = arrays[2].reshape(p.w.shape)
        return arrays

    return Passes(forward, forward_backward, to_channels_last)


@dataclasses.dataclass(frozen=True)
class Peer:
    """One peer library: its passes per memory layout for a layer (the faster layout is reported, per pass), and
    how many timed calls and rounds it gets (None: --repeats and the run's rounds)."""

    name: str
    description: str
    layouts: Callable[[Layer], dict]  # layer -> {layout: (Problem -> Passes)}
    repeats: int | None = None
    rounds: int | None = None
    warm_up: bool = True


PEERS = ("torch", "numpy", "tf")


def find_peers(spec: str, threads: int, numpy_repeats: int) -> tuple[list[Peer], list[str]]:
    """The peers asked for (--peers: auto = every installed one) that import, and a note per one skipped."""
    import functools
    import os

    import numpy as np

    wanted = PEERS if spec == "auto" else spec.split(",")
    peers, skipped = [], []
    if "torch" in wanted:
        try:
            import torch
        except ImportError:
            skipped.append("torch: not installed")
        else:
            torch.set_num_threads(threads)
            def layouts(layer: Layer) -> dict:
                return {layout: functools.partial(torch_passes, layout=layout) for layout in torch_layouts(layer)}

            peers.append(Peer("torch", f"torch {torch.__version__}, NCHW and channels_last (the faster per pass), "
                                       "torch.nn.functional.conv*d + autograd", layouts))
    if "numpy" in wanted:
        peers.append(Peer("numpy", f"numpy {np.__version__} float32 im2col + matmul, channels-last, "
                                   f"{numpy_repeats} timed call(s), one round", lambda layer: {"NHWC": numpy_passes},
                          repeats=numpy_repeats, rounds=1, warm_up=False))
    if "tf" in wanted:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr
        try:
            import tensorflow as tf
        except ImportError:
            skipped.append("tf: tensorflow is not installed")
        else:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            peers.append(Peer("tf", f"tensorflow {tf.__version__}, NHWC, tf.nn.convolution / depthwise_conv2d in "
                                    "tf.function + GradientTape", lambda layer: {"NHWC": tf_passes}))
    return peers, skipped


def check_agreement(layer: Layer, peer: str, ours: list, theirs: list) -> None:
    """Stop the run unless every output of convkit matches the peer's (see the module docstring)."""
    import numpy as np

    eps = float(np.finfo(np.float32).eps)
    for name, a, b, reduction in zip(OUTPUTS, ours, theirs, layer.reductions()):
        if a.shape != b.shape:
            raise SystemExit(f"bench_conv: {layer.name}: convkit's {name} has shape {a.shape}, {peer}'s {b.shape}")
        error, scale = float(np.max(np.abs(a - b))), float(np.max(np.abs(b)))
        allowed = TOLERANCE * eps * math.sqrt(reduction) * scale
        if not error <= allowed:
            raise SystemExit(f"bench_conv: {layer.name} ({layer.describe()}): convkit's {name} differs from "
                             f"{peer}'s by up to {error:.3g} (allowed {allowed:.3g}, largest |{name}| {scale:.3g})")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How every layer of one run is measured."""

    peers: list  # of Peer
    backward: bool
    repeats: int  # timed calls per round, after a warm-up call
    rounds: int  # alternations of convkit and the peers
    peak: float  # FP32 FMA peak, GFLOP/s
    settle: bool = True  # pause before each timing (not in a --quick smoke test, whose timings mean nothing)


@dataclasses.dataclass(frozen=True)
class Contender:
    """One timed call: convkit's, or a peer's in one layout."""

    peer: str  # "convkit" or the peer's name
    layout: str
    call: Callable[[], object]
    repeats: int
    rounds: int
    warm_up: bool = True


def time_alternating(contenders: Sequence[Contender], settle: bool) -> list[float]:
    """Median seconds of each contender over rounds that alternate them (each in its first `rounds` rounds),
    settling before each."""
    times: list[list[float]] = [[] for _ in contenders]
    for round_index in range(max(c.rounds for c in contenders)):
        for c, record in zip(contenders, times):
            if round_index < c.rounds:
                if settle:
                    common.settle()
                record.append(common.median_seconds(c.call, c.repeats, warm_up=c.warm_up))
    return [statistics.median(t) for t in times]


def best_per_peer(contenders: Sequence[Contender], seconds: Sequence[float]) -> dict:
    """{peer: (seconds, layout)} of each peer's fastest layout; convkit's under "convkit"."""
    best: dict = {}
    for c, t in zip(contenders, seconds):
        if c.peer not in best or t < best[c.peer][0]:
            best[c.peer] = (t, c.layout)
    return best


def measure(layer: Layer, settings: Settings) -> dict:
    """Check one layer against every peer, then time it: one result row."""
    problem = make_problem(layer)
    ours = convkit_passes(problem)
    pass_names = ["forward", "forward_backward"] if settings.backward else ["forward"]
    expected = getattr(ours, pass_names[-1])()
    contenders: dict = {name: [Contender("convkit", "NHWC", getattr(ours, name), settings.repeats, settings.rounds)]
                        for name in pass_names}
    for peer in settings.peers:
        for layout, make_passes in peer.layouts(layer).items():
            theirs = make_passes(problem)
            check_agreement(layer, f"{peer.name} {layout}", expected,
                            theirs.to_channels_last(getattr(theirs, pass_names[-1])()))
            for name in pass_names:
                contenders[name].append(Contender(peer.name, layout, getattr(theirs, name), peer.repeats or settings.repeats,
                                                  peer.rounds or settings.rounds, peer.warm_up))
    row = {"layer": layer.name, "problem": layer.describe()}
    layouts = []
    for label, name, flops in (("fwd", "forward", layer.forward_flops), ("f+b", "forward_backward", 3 * layer.forward_flops)):
        best = best_per_peer(contenders[name], time_alternating(contenders[name], settings.settle)) if name in contenders else None
        row.update(pass_columns(label, flops, best, [peer.name for peer in settings.peers], settings.peak))
        if best and "torch" in best:
            layouts.append(best["torch"][1])
    if any(peer.name == "torch" for peer in settings.peers):
        row["torch layout"] = "/".join(layouts)
    return row


def pass_columns(label: str, flops: float, best: dict | None, peers: Sequence[str], peak: float) -> dict:
    """convkit's GFLOP/s and % of peak, then each peer's GFLOP/s and ratio (peer time / convkit time), from
    best_per_peer's seconds; all None (n/a) for a pass that was not timed."""
    names = [f"convkit {label} GF/s", f"{label} % peak", *[f"{p} {label} {what}" for p in peers for what in
                                                            ("GF/s", "ratio")]]
    if best is None:
        return dict.fromkeys(names)
    ours = best["convkit"][0]
    values = [flops / ours / 1e9, 100 * flops / ours / 1e9 / peak]
    for p in peers:
        values += [flops / best[p][0] / 1e9, best[p][0] / ours]
    return dict(zip(names, values))


def summarise(rows: Sequence[dict]) -> list[dict]:
    """A geomean row over every number column and a min row for the ratios (n/a where nothing was timed)."""
    numeric = [column for column, value in rows[0].items() if isinstance(value, float) or value is None]

    def over(column: str, reduce: Callable[[list], float]) -> float | None:
        values = [row[column] for row in rows if row[column] is not None]
        return reduce(values) if values else None

    return [
        {"layer": "geomean", **{column: over(column, common.geomean) for column in numeric}},
        {"layer": "min", **{column: over(column, min) for column in numeric if column.endswith(" ratio")}},
    ]


NUMPY_TARGET = 20  # the target: convkit at least 20x faster than the NumPy im2col reference on every layer


def numpy_target_line(rows: Sequence[dict]) -> str:
    """"≥ 20x NumPy on every layer: fwd yes (min 31.2x, conv1d), f+b ..." for each pass that was timed."""
    verdicts = []
    for label in ("fwd", "f+b"):
        ratios = [(row[f"numpy {label} ratio"], row["layer"]) for row in rows if row.get(f"numpy {label} ratio")]
        if ratios:
            worst = min(ratios)
            verdicts.append(f"{label} {'yes' if worst[0] >= NUMPY_TARGET else 'no'} (min {worst[0]:.1f}x, {worst[1]})")
    return f"≥ {NUMPY_TARGET}x NumPy on every layer: " + (", ".join(verdicts) or "n/a (numpy not measured)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per round, after a warm-up (default 7)")
    parser.add_argument("--numpy-repeats", type=int, default=1,
                        help="timed calls of the NumPy reference, one round, no extra warm-up (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny versions of the layers (smoke test, seconds)")
    common.add_output_options(parser)
    parser.add_argument("--layers", help="comma-separated layer names or 1-based indices (default: all)")
    parser.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    parser.add_argument("--peers", default="auto",
                        help=f"comma-separated peers among {', '.join(PEERS)}, or auto (default): every one installed")
    args = parser.parse_args(argv)
    layers = common.select(args.layers, LAYERS, "--layers", parser, by_index=True)
    unknown = set(args.peers.split(",")) - set(PEERS) if args.peers != "auto" else set()
    if unknown:
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))}; choose among auto, {', '.join(PEERS)}")
    common.pin_threads(args.threads)

    import convkit

    convkit.set_num_threads(args.threads)
    peers, skipped = find_peers(args.peers, args.threads, args.numpy_repeats)
    backward = not args.no_backward and hasattr(convkit.ops, "conv_backward")
    if backward:
        backward_note = "gradients of x, w and b (convkit.ops.conv_backward), counted as 3x the forward FLOPs"
    else:
        backward_note = "n/a (--no-backward)" if args.no_backward else "n/a (this convkit has no ops.conv_backward)"

    machine = common.describe_machine(args.threads)
    peak = convkit._C.fma_peak_gflops(args.threads)
    machine.update({"fp32_peak_gflops": round(peak, 1), "peers": {peer.name: peer.description for peer in peers},
                    "peers_skipped": skipped, "backward": backward, "quick": args.quick})
    common.print_header([
        f"# conv float32{', quick (tiny layers)' if args.quick else ''}", *common.machine_lines(machine),
        *[f"# peer {peer.name}: {peer.description}" for peer in peers], *[f"# peer {note}" for note in skipped],
        f"# measured FP32 FMA peak: {peak:.1f} GFLOP/s",
        f"# f+b: {backward_note}; ratio PEER = peer time / convkit time (> 1: convkit faster)"], args)

    # One round is enough for the smoke test; two let the shared machine's noise hit all libraries alike.
    settings = Settings(peers, backward, args.repeats, rounds=1 if args.quick else 2, peak=peak, settle=not args.quick)
    rows = []
    for i, layer in enumerate(layers, 1):
        row = measure(layer.quick() if args.quick else layer, settings)
        rows.append(row)
        ratios = ", ".join(f"{label} x{row[f'{peer.name} {label} ratio']:.2f} {peer.name}" for peer in peers
                           for label in (("fwd", "f+b") if backward else ("fwd",)))
        print(f"[{i}/{len(layers)}] {layer.name} ({row['problem']}): fwd {row['convkit fwd GF/s']:.1f} GF/s"
              f"{', ' + ratios if ratios else ''}", file=sys.stderr, flush=True)
    common.print_table(rows, list(rows[0]), args.json, machine, summarise(rows), as_csv=args.csv,
                       notes=[numpy_target_line(rows)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
