"""Whole training steps: images per second and peak memory of convkit against the same network in PyTorch.

    python benchmarks/bench_train.py --threads 2
    python benchmarks/bench_train.py --models lenet5,resnet18 --repeats 20 --json
    python benchmarks/bench_train.py --quick        # tiny batches and inputs (smoke test)

One step = forward (training mode) + softmax cross-entropy on integer labels (mean) + backward + SGD update
(lr 0.01, momentum 0.9, weight decay 5e-4 on every parameter), float32, on fixed random data (seed 0):
- lenet5: convkit.models.lenet5_modern, batch 64, 28x28x1;
- resnet18: convkit.models.resnet18_cifar (3x3 stem), batch 32, 32x32x3;
- mobilenet: convkit.models.mobilenet(alpha=0.25), batch 16, 128x128x3 (ReLU; dropout off, see below);
- conv3d: two (Conv3D 3x3x3 'same', no bias -> BatchNorm -> ReLU -> max-pool 2) with 8 and 16 filters, then
  Dense, batch 4, 16x16x16x1 volumes.
All have 10 classes.

Peer: the same architecture written in PyTorch below (torch.nn modules, torch.optim.SGD, F.cross_entropy),
with torch.set_num_threads(--threads), timed in NCHW and in channels_last memory format; the faster one is
reported (column "torch layout"). ratio = torch time per step / convkit time per step (> 1: convkit faster).

Same function, checked once per network before timing: convkit's initial weights are copied into the torch
model (kernels (*k, C_in/groups, C_out) -> (C_out, C_in/groups, *k), dense (in, out) -> (out, in), the first
dense after a flatten also reordered from (*spatial, C) to (C, *spatial) inputs), then the inference logits
and one training step must agree: |convkit - torch| <= 1e-4 * max(1, max |torch logits|) for the logits,
1e-4 * max(1, loss) for the loss, and all parameter gradients (in torch's layout, as one vector) within a
relative L2 distance of 5e-2 (1e-1 with --quick; see GRADIENT_TOLERANCE); column "max logit diff 1e-6"
gives the largest logit difference seen, in units of 1e-6. MobileNet's dropout (1e-3 in
the zoo) is off in both, so that the two training steps see the same function.

Timing: steps are timed one by one, in --repeats steps per library per round, over two rounds (one with
--quick) alternating convkit, torch NCHW and torch channels_last, each after common.settle()'s pause; a
step's time is the median of its samples, images/s = batch / that.

Peak memory: each library runs in its own subprocess (this script with --rss-worker), which imports NumPy and
its library, reads its peak resident set size (the baseline), builds the network and data, runs --rss-steps
training steps and reads the peak again; the column is the difference (MiB), i.e. the peak memory of model,
optimizer state, data and one step's activations and gradients above the imports. The peak is VmHWM from
/proc/self/status, which is what getrusage's ru_maxrss reports too, except that on Linux ru_maxrss also keeps
the high-water mark of the process that forked the worker (this one: ~1 GB with PyTorch and four networks),
so it read 0 for every small network; ru_maxrss remains the fallback without /proc.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

CLASSES = 10
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
TOLERANCE = 1e-4  # relative to max(1, |reference|): float32 through up to 20 layers of sums
# Relative L2 distance of all parameter gradients: not elementwise, because a ReLU input within ~1e-6 of zero
# may round to the other side in one library, and BatchNorm's backward spreads that over a whole channel.
# Seen, float32 against float64 (where convkit and PyTorch agree to 1e-14): ResNet-18 at batch 32, convkit
# 3.4e-3 and PyTorch 4.8e-4; MobileNet at batch 16, convkit 4.7e-3 and PyTorch 1.2e-2. The --quick batches
# of 2, where BatchNorm normalises as few as 8 values: up to 4e-2 between the two.
GRADIENT_TOLERANCE = {False: 5e-2, True: 1e-1}  # by --quick
RSS_STEPS = 5


@dataclasses.dataclass(frozen=True)
class Net:
    """One benchmarked network: its batch and input shape (channels-last, no batch axis), full and --quick."""

    name: str
    batch: int
    input_shape: tuple[int, ...]
    quick_batch: int
    quick_input_shape: tuple[int, ...]

    def shapes(self, quick: bool) -> tuple[int, tuple[int, ...]]:
        return (self.quick_batch, self.quick_input_shape) if quick else (self.batch, self.input_shape)


NETS = [
    Net("lenet5", 64, (28, 28, 1), 8, (28, 28, 1)),
    Net("resnet18", 32, (32, 32, 3), 2, (16, 16, 3)),
    Net("mobilenet", 16, (128, 128, 3), 2, (64, 64, 3)),
    Net("conv3d", 4, (16, 16, 16, 1), 2, (8, 8, 8, 1)),
]
CONV3D_FILTERS = (8, 16)


# ----------------------------------------------------------------------------------------------- convkit

def convkit_model(name: str, input_shape: tuple[int, ...]):
    from convkit import layers, models
    from convkit.network import Sequential

    if name == "lenet5":
        return models.lenet5_modern(input_shape=input_shape, classes=CLASSES)
    if name == "resnet18":
        return models.resnet18_cifar(input_shape=input_shape, classes=CLASSES)
    if name == "mobilenet":
        return models.mobilenet(alpha=0.25, input_shape=input_shape, classes=CLASSES, dropout=0.0)
    stack = []
    for filters in CONV3D_FILTERS:
        stack += [layers.Conv3D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                  layers.Activation("relu"), layers.MaxPooling3D(2)]
    return Sequential([*stack, layers.Flatten(), layers.Dense(CLASSES)], input_shape=input_shape, name="conv3d")


def convkit_step(model) -> Callable:
    """A training step on (x, labels) returning the loss before the update."""
    from convkit import losses
    from convkit.optim import SGD

    loss_fn = losses.get("softmax_cross_entropy")
    optimizer = SGD(model.trainable_parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def step(x, labels) -> float:
        loss, dlogits = loss_fn(model.forward(x, training=True), labels)
        optimizer.zero_grad()
        model.backward(dlogits, input_gradient=False)  # as autograd, which needs no gradient of the data
        optimizer.step()
        return float(loss)

    return step


# ----------------------------------------------------------------------------------------------- PyTorch

def torch_model(name: str, input_shape: tuple[int, ...]):
    """The torch twin of convkit_model(name): the same layers, their parameters registered in the order of
    convkit's trainable_parameters(). Returns (module, {parameter name: channels-last shape of the flattened
    map}) for dense layers that follow a flatten."""
    import torch.nn as nn

    def conv_bn(c_in, c_out, kernel, stride=1, groups=1, relu=True):
        padding = kernel // 2
        block = [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*block, nn.ReLU()) if relu else nn.Sequential(*block)

    class BasicBlock(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            # Registered first, as convkit's graph order puts the projection before the residual branch.
            self.shortcut = conv_bn(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in != c_out else None
            self.branch = nn.Sequential(conv_bn(c_in, c_out, 3, stride), conv_bn(c_out, c_out, 3, relu=False))

        def forward(self, x):
            shortcut = x if self.shortcut is None else self.shortcut(x)
            return (shortcut + self.branch(x)).relu()

    if name == "lenet5":
        h, w, c = input_shape
        flat = ((h // 2 - 4) // 2, (w // 2 - 4) // 2, 16)
        net = nn.Sequential(nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(math.prod(flat), 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, CLASSES))
        return net, {"7.weight": flat}
    if name == "resnet18":
        blocks, c_in = [conv_bn(input_shape[-1], 64, 3)], 64
        for stage, c_out in enumerate((64, 128, 256, 512)):
            for block in range(2):
                blocks.append(BasicBlock(c_in, c_out, 2 if block == 0 and stage > 0 else 1))
                c_in = c_out
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, CLASSES)), {}
    if name == "mobilenet":
        from convkit.models.mobilenet import MOBILENET_BLOCKS

        c_in = 8  # int(32 * 0.25)
        blocks = [conv_bn(input_shape[-1], c_in, 3, 2)]
        for filters, stride in MOBILENET_BLOCKS:
            c_out = int(filters * 0.25)
            blocks += [conv_bn(c_in, c_in, 3, stride, groups=c_in), conv_bn(c_in, c_out, 1)]
            c_in = c_out
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, CLASSES)), {}
    stack, c_in = [], input_shape[-1]
    for filters in CONV3D_FILTERS:
        stack += [nn.Conv3d(c_in, filters, 3, padding=1, bias=False), nn.BatchNorm3d(filters), nn.ReLU(),
                  nn.MaxPool3d(2)]
        c_in = filters
    flat = (*(s // 2 ** len(CONV3D_FILTERS) for s in input_shape[:-1]), c_in)
    net = nn.Sequential(*stack, nn.Flatten(), nn.Linear(math.prod(flat), CLASSES))
    return net, {f"{len(stack) + 1}.weight": flat}


def copy_weights(model, net, flattened: dict) -> None:
    """Copy convkit's trainable parameters into the torch twin, in order, converting the layouts."""
    import numpy as np
    import torch

    ours = model.trainable_parameters()
    theirs = list(net.named_parameters())
    if [p.size for p in ours] != [t.numel() for _, t in theirs]:
        raise SystemExit(f"the torch model does not match convkit's: parameter sizes {[p.size for p in ours]} "
                         f"against {[t.numel() for _, t in theirs]}")
    for p, (name, t) in zip(ours, theirs):
        with torch.no_grad():
            t.copy_(torch.from_numpy(np.ascontiguousarray(torch_layout(p.value, name, flattened))).reshape(t.shape))


def torch_layout(value, name: str, flattened: dict):
    """A convkit parameter's array (a view) in the layout of the torch parameter `name`, up to a reshape."""
    if name in flattened:  # (*spatial * C, out) -> (out, C * *spatial)
        spatial_c = flattened[name]
        value = value.reshape(*spatial_c, -1)
        return value.transpose(len(spatial_c), len(spatial_c) - 1, *range(len(spatial_c) - 1))
    if value.ndim >= 2:  # kernels (*k, in, out) -> (out, in, *k); dense (in, out) -> (out, in)
        return value.transpose(value.ndim - 1, value.ndim - 2, *range(value.ndim - 2))
    return value


def torch_layouts(input_shape: tuple[int, ...]) -> dict:
    import torch

    cl = torch.channels_last if len(input_shape) == 3 else torch.channels_last_3d
    return {"NCHW": torch.contiguous_format, "channels_last": cl}


def to_torch(x, memory_format):
    """Channels-last NumPy (N, *spatial, C) -> a torch tensor (N, C, *spatial) in memory_format."""
    import torch

    return torch.from_numpy(x).permute(0, x.ndim - 1, *range(1, x.ndim - 1)).contiguous(memory_format=memory_format)


def torch_step(net) -> Callable:
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def step(x, labels) -> float:
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


# ----------------------------------------------------------------------------------------------- harness

def make_data(batch: int, input_shape: tuple[int, ...]):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, *input_shape), dtype=np.float32), rng.integers(0, CLASSES, batch)


@dataclasses.dataclass
class Contender:
    """One library (and layout) ready to train: its step and its data."""

    label: str
    step: Callable
    x: object
    labels: object

    def __call__(self) -> float:
        return self.step(self.x, self.labels)


def checked_torch_contenders(name: str, model, ours: Contender, input_shape: tuple[int, ...], quick: bool) -> tuple:
    """The torch twins of convkit's model (one per layout) with its weights, after checking that they compute
    the same function; returns (contenders, max logit difference). Trains each twin and `ours` one step."""
    import copy

    import numpy as np
    import torch

    net, flattened = torch_model(name, input_shape)
    copy_weights(model, net, flattened)
    labels = torch.from_numpy(ours.labels)
    twins = {layout: copy.deepcopy(net).to(memory_format=memory_format)
             for layout, memory_format in torch_layouts(input_shape).items()}
    contenders = [Contender(f"torch {layout}", torch_step(twin), to_torch(ours.x, torch_layouts(input_shape)[layout]),
                            labels) for layout, twin in twins.items()]
    with torch.no_grad():
        expected = net.eval()(contenders[0].x).numpy()
    logit_diff = float(np.max(np.abs(model.forward(ours.x, training=False) - expected)))
    if logit_diff > TOLERANCE * max(1.0, float(np.max(np.abs(expected)))):
        raise SystemExit(f"{name}: convkit's logits differ from torch's by {logit_diff:.3g} (max |torch| "
                         f"{np.max(np.abs(expected)):.3g})")
    loss = ours()
    ours_gradient = np.concatenate([torch_layout(p.grad, n, flattened).ravel()
                                    for p, (n, _) in zip(model.trainable_parameters(), net.named_parameters())])
    for c, twin in zip(contenders, twins.values()):
        value = c()
        if abs(loss - value) > TOLERANCE * max(1.0, abs(value)):
            raise SystemExit(f"{name}: loss {loss:.6g} (convkit) against {value:.6g} ({c.label})")
        gradient = np.concatenate([t.grad.numpy().ravel() for t in twin.parameters()])
        error = np.linalg.norm(ours_gradient - gradient) / np.linalg.norm(gradient)
        if error > GRADIENT_TOLERANCE[quick]:
            raise SystemExit(f"{name}: the parameter gradients differ from {c.label}'s by {error:.3g} (relative L2)")
    return contenders, logit_diff


def median_step_seconds(contenders: Sequence[Contender], repeats: int, rounds: int) -> dict:
    """Median seconds per step of each contender, timed step by step in alternating rounds."""
    samples: dict = {c.label: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            common.settle()
            for _ in range(repeats):
                start = time.perf_counter()
                c()
                samples[c.label].append(time.perf_counter() - start)
    return {label: statistics.median(s) for label, s in samples.items()}


def peak_rss_kib() -> int:
    """This process's peak resident set size: VmHWM of /proc/self/status where there is one. Not
    getrusage's ru_maxrss on Linux: exec records the forking parent's peak there, so a child of a large
    benchmark process starts with the parent's peak and never exceeds it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_worker(library: str, net: Net, quick: bool, layout: Optional[str], steps: int) -> dict:
    """Runs in its own process: the peak RSS after the imports, and again after `steps` training steps (KiB)."""
    import numpy  # noqa: F401

    import convkit  # the torch worker reads the MobileNet block table from convkit too

    if library == "torch":
        import torch
    baseline = peak_rss_kib()
    batch, input_shape = net.shapes(quick)
    x, labels = make_data(batch, input_shape)
    if library == "convkit":
        contender = Contender("convkit", convkit_step(convkit_model(net.name, input_shape)), x, labels)
    else:
        memory_format = torch_layouts(input_shape)[layout]
        module = torch_model(net.name, input_shape)[0].to(memory_format=memory_format)
        contender = Contender("torch", torch_step(module), to_torch(x, memory_format), torch.from_numpy(labels))
    for _ in range(steps):
        contender()
    return {"baseline_kib": baseline, "peak_kib": peak_rss_kib()}


def peak_rss_mib(library: str, net: Net, args: argparse.Namespace, layout: Optional[str] = None) -> float:
    """Peak RSS above the imports of `library` training `net`, measured in a fresh process."""
    command = [sys.executable, __file__, "--rss-worker", library, "--models", net.name, "--threads",
               str(args.threads), "--rss-steps", str(args.rss_steps), *(["--quick"] if args.quick else []),
               *(["--layout", layout] if layout else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {library} memory run of {net.name} failed:\n{done.stderr}")
    report = json.loads(done.stdout.splitlines()[-1])
    return (report["peak_kib"] - report["baseline_kib"]) / 1024


def choose_peer(peer: str, threads: int) -> Optional[str]:
    """The torch version when it is the peer, else None."""
    if peer == "none":
        return None
    try:
        import torch
    except ImportError:
        if peer == "torch":
            raise SystemExit("--peer torch: PyTorch is not installed")
        return None
    torch.set_num_threads(threads)
    return torch.__version__


def measure(net: Net, args: argparse.Namespace, with_torch: bool) -> dict:
    import gc

    batch, input_shape = net.shapes(args.quick)
    model = convkit_model(net.name, input_shape)
    ours = Contender("convkit", convkit_step(model), *make_data(batch, input_shape))
    if with_torch:
        peers, logit_diff = checked_torch_contenders(net.name, model, ours, input_shape, args.quick)
    else:
        peers, logit_diff = [], None
        ours()  # warm-up
    seconds = median_step_seconds([ours, *peers], args.repeats, rounds=1 if args.quick else 2)
    row = {"net": net.name, "batch": batch, "input": "x".join(map(str, input_shape)),
           "params": sum(p.size for p in model.trainable_parameters()),
           "convkit img/s": batch / seconds["convkit"], "torch img/s": None, "torch layout": None, "ratio": None,
           "convkit MiB": None, "torch MiB": None,
           "max logit diff 1e-6": None if logit_diff is None else logit_diff * 1e6}
    del model, ours, peers
    gc.collect()
    row["convkit MiB"] = peak_rss_mib("convkit", net, args)
    if with_torch:
        best = min((label for label in seconds if label != "convkit"), key=seconds.get)
        layout = best.split()[1]
        row.update({"torch img/s": batch / seconds[best], "torch layout": layout,
                    "ratio": seconds[best] / seconds["convkit"], "torch MiB": peak_rss_mib("torch", net, args, layout)})
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per library per round (default 10)")
    parser.add_argument("--quick", action="store_true", help="tiny batches and inputs (smoke test, seconds)")
    common.add_output_options(parser)
    parser.add_argument("--models", help=f"comma-separated networks (default: all of {[n.name for n in NETS]})")
    parser.add_argument("--peer", choices=["auto", "torch", "none"], default="auto",
                        help="auto (default): PyTorch when installed; none: convkit alone")
    parser.add_argument("--rss-steps", type=int, default=RSS_STEPS, help="steps of each memory run")
    parser.add_argument("--rss-worker", choices=["convkit", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    nets = common.select(args.models, NETS, "--models", parser)
    common.pin_threads(args.threads)

    import convkit

    convkit.set_num_threads(args.threads)
    if args.rss_worker:
        if args.rss_worker == "torch":
            choose_peer("torch", args.threads)
        print(json.dumps(rss_worker(args.rss_worker, nets[0], args.quick, args.layout, args.rss_steps)))
        return 0
    torch_version = choose_peer(args.peer, args.threads)
    machine = common.describe_machine(args.threads)
    machine.update({"peer": f"torch {torch_version}" if torch_version else "none", "repeats": args.repeats,
                    "rss_steps": args.rss_steps, "quick": args.quick})
    common.print_header([
        f"# training steps, float32{', quick (tiny shapes)' if args.quick else ''}", *common.machine_lines(machine),
        f"# peer: {machine['peer']}; ratio = torch time / convkit time per step (> 1: convkit faster)",
        "# not peers here: TensorFlow/Keras (no Keras twins of the networks are written yet) and NumPy (no NumPy "
        "training step; bench_conv.py compares the layers with NumPy)",
        f"# MiB: peak RSS above the imports over {args.rss_steps} steps, each library in its own process"], args)
    rows = []
    for i, net in enumerate(nets, 1):
        row = measure(net, args, torch_version is not None)
        rows.append(row)
        peer = (f", torch {row['torch layout']} {row['torch img/s']:.1f} img/s x{row['ratio']:.2f}"
                if torch_version else "")
        print(f"[{i}/{len(nets)}] {net.name} (batch {row['batch']}, {row['input']}): convkit "
              f"{row['convkit img/s']:.1f} img/s{peer}", file=sys.stderr, flush=True)
    ratios = [row["ratio"] for row in rows if row["ratio"]]
    summary = [{"net": "geomean", "ratio": common.geomean(ratios)}] if ratios else []
    common.print_table(rows, list(rows[0]), args.json, machine, summary, as_csv=args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
