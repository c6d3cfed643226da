"""convkit's CUDA backend against PyTorch/cuDNN on the same GPU, in one run (needs a GPU and PyTorch with CUDA).

    python benchmarks/bench_cuda.py                      # conv suite, BN/pooling, training steps
    python benchmarks/bench_cuda.py --suites conv --batch 128 --json
    python benchmarks/bench_cuda.py --quick              # small shapes, few repeats (smoke test)
    python benchmarks/bench_cuda.py --tf32               # both libraries allowed TF32 (default: neither)

Suites, float32, channels-last data in both libraries (PyTorch tensors in torch.channels_last, so that
cuDNN runs its NHWC kernels on the same layout as convkit):
- conv: ResNet-50 and MobileNet layers at batch --batch (64), CIFAR ResNet-18 layers at 4x that, forward
  (y = conv(x, w) + b) and forward+backward (dx, dw, db for a given dy; torch.autograd.grad);
- norm_pool: BatchNorm (training: batch statistics) forward+backward, max pool 3x3/2 and global average
  pool forward+backward;
- train: one training step (forward, softmax cross-entropy, backward, SGD with momentum 0.9 and weight decay
  5e-4) of ResNet-18 on 32x32 CIFAR inputs (3x3 stem, 10 classes) and of ResNet-50 on 224x224 inputs
  (1000 classes), batch --batch, written with convkit's functional ops on Tensors (convkit has no
  model.to("cuda") yet) and as the same torch.nn network (BN in training mode, no conv biases); the two start
  from different random weights, so the steps are timed, not compared.

Timing: every call is followed by a device synchronisation; a time is the median of --repeats calls after a
warm-up, in two rounds alternating the libraries. ratio = torch time / convkit time (above 1: convkit
faster). Before timing, each convkit output is compared with PyTorch's: max |convkit - torch| must be at most
1e-3 * max |torch| (5e-3 with --tf32), or the run stops.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class ConvLayer:
    name: str
    batch_scale: int  # batch = --batch * batch_scale
    spatial: int
    c_in: int
    c_out: int
    kernel: int
    stride: int
    groups: int = 1


CONV_LAYERS = [
    ConvLayer("r50-stem7x7s2", 1, 224, 3, 64, 7, 2),
    ConvLayer("r50-1x1-64-256", 1, 56, 64, 256, 1, 1),
    ConvLayer("r50-3x3-64", 1, 56, 64, 64, 3, 1),
    ConvLayer("r50-3x3-128s2", 1, 56, 128, 128, 3, 2),
    ConvLayer("r50-3x3-256", 1, 14, 256, 256, 3, 1),
    ConvLayer("r50-1x1-2048-512", 1, 7, 2048, 512, 1, 1),
    ConvLayer("mbv2-dw3x3-96", 1, 56, 96, 96, 3, 1, groups=96),
    ConvLayer("cifar-3x3-64", 4, 32, 64, 64, 3, 1),
    ConvLayer("cifar-3x3-256", 4, 8, 256, 256, 3, 1),
]


def sync_timed(call: Callable[[], object], synchronize: Callable[[], None], repeats: int) -> float:
    call()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_close(name: str, ours: np.ndarray, theirs: np.ndarray, tolerance: float) -> None:
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1e-30)
    error = float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max(initial=0.0))
    if error > tolerance * scale:
        raise SystemExit(f"{name}: convkit and PyTorch differ by {error:.3g} (max |torch| {scale:.3g}); not timing")


class Peers:
    """The two libraries on the GPU, and conversions between them."""

    def __init__(self, torch, tf32: bool):
        import convkit

        self.torch, self.convkit = torch, convkit
        convkit.cuda.set_allow_tf32(tf32)
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True

    def nhwc(self, x: np.ndarray):
        """A channels-last numpy array as a torch NCHW-shaped tensor in channels_last memory."""
        t = self.torch.from_numpy(np.ascontiguousarray(x)).cuda()
        return t.permute(0, 3, 1, 2).contiguous(memory_format=self.torch.channels_last) if x.ndim == 4 else t

    def to_host_nhwc(self, t) -> np.ndarray:
        return (t.permute(0, 2, 3, 1) if t.ndim == 4 else t).detach().cpu().numpy()

    def weight(self, w: np.ndarray):
        """convkit's (kh, kw, C_in/groups, C_out) kernel as torch's (C_out, C_in/groups, kh, kw)."""
        return self.torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).cuda().contiguous(
            memory_format=self.torch.channels_last)

    def weight_back(self, t) -> np.ndarray:
        return t.detach().cpu().numpy().transpose(2, 3, 1, 0)


def conv_rows(peers: Peers, layers, batch: int, repeats: int, rounds: int, tolerance: float) -> list[dict]:
    torch, ck, F = peers.torch, peers.convkit, peers.torch.nn.functional
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers:
        n = batch * layer.batch_scale
        x = rng.standard_normal((n, layer.spatial, layer.spatial, layer.c_in), dtype=np.float32)
        w = (rng.standard_normal((layer.kernel, layer.kernel, layer.c_in // layer.groups, layer.c_out),
                                 dtype=np.float32) / math.sqrt(layer.kernel**2 * layer.c_in / layer.groups))
        b = rng.standard_normal(layer.c_out, dtype=np.float32)
        pad = layer.kernel // 2
        options = dict(stride=layer.stride, padding=pad, groups=layer.groups)
        gx, gw, gb = ck.to_device(x), ck.to_device(w), ck.to_device(b)
        tx, tw, tb = peers.nhwc(x).requires_grad_(), peers.weight(w).requires_grad_(), torch.from_numpy(b).cuda()
        tb.requires_grad_()
        ours = ck.ops.conv(gx, gw, gb, **options)
        theirs = F.conv2d(tx, tw, tb, stride=layer.stride, padding=pad, groups=layer.groups)
        check_close(layer.name, ours.numpy(), peers.to_host_nhwc(theirs), tolerance)
        dy = rng.standard_normal(ours.shape, dtype=np.float32)
        gdy, tdy = ck.to_device(dy), peers.nhwc(dy)
        dx, dw, db = ck.ops.conv_backward(gdy, gx, gw, **options)
        tdx, tdw, tdb = torch.autograd.grad(theirs, (tx, tw, tb), tdy)
        check_close(layer.name + " dx", dx.numpy(), peers.to_host_nhwc(tdx), tolerance)
        check_close(layer.name + " dw", dw.numpy(), peers.weight_back(tdw), tolerance)
        check_close(layer.name + " db", db.numpy(), tdb.cpu().numpy(), tolerance)

        def ck_forward():
            ck.ops.conv(gx, gw, gb, **options)

        def ck_training():
            ck.ops.conv(gx, gw, gb, **options)
            ck.ops.conv_backward(gdy, gx, gw, **options)

        def torch_forward():
            with torch.no_grad():
                F.conv2d(tx, tw, tb, stride=layer.stride, padding=pad, groups=layer.groups)

        def torch_training():
            y = F.conv2d(tx, tw, tb, stride=layer.stride, padding=pad, groups=layer.groups)
            torch.autograd.grad(y, (tx, tw, tb), tdy)

        flops = 2 * n * ours.shape[1] * ours.shape[2] * layer.c_out * layer.kernel**2 * layer.c_in / layer.groups
        rows.append(compare(f"conv {layer.name} n={n}", {"fwd": (ck_forward, torch_forward, flops),
                                                          "fwd+bwd": (ck_training, torch_training, 3 * flops)},
                            ck.cuda.synchronize, torch.cuda.synchronize, repeats, rounds))
    return [r for pair in rows for r in pair]


def compare(name: str, passes: dict, ck_sync, torch_sync, repeats: int, rounds: int) -> list[dict]:
    rows = []
    for pass_name, (ours, theirs, flops) in passes.items():
        ck_times, torch_times = [], []
        for _ in range(rounds):
            common.settle()
            ck_times.append(sync_timed(ours, ck_sync, repeats))
            common.settle()
            torch_times.append(sync_timed(theirs, torch_sync, repeats))
        ck_s, torch_s = min(ck_times), min(torch_times)
        rows.append({"case": name, "pass": pass_name, "convkit ms": 1e3 * ck_s, "torch ms": 1e3 * torch_s,
                     "convkit TFLOP/s": flops / ck_s / 1e12 if flops else None, "ratio": torch_s / ck_s})
    return rows


def norm_pool_rows(peers: Peers, batch: int, repeats: int, rounds: int, tolerance: float) -> list[dict]:
    torch, ck, F = peers.torch, peers.convkit, peers.torch.nn.functional
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 56, 56, 256), dtype=np.float32)
    gamma, beta = rng.standard_normal(256, dtype=np.float32), rng.standard_normal(256, dtype=np.float32)
    gx, gg, gbeta = ck.to_device(x), ck.to_device(gamma), ck.to_device(beta)
    tx = peers.nhwc(x).requires_grad_()
    tg, tbeta = torch.from_numpy(gamma).cuda().requires_grad_(), torch.from_numpy(beta).cuda().requires_grad_()
    y, stats = ck.ops.batch_norm(gx, gg, gbeta)
    ty = F.batch_norm(tx, None, None, tg, tbeta, training=True, eps=1e-5)
    check_close("batch_norm", y.numpy(), peers.to_host_nhwc(ty), tolerance)
    gdy, tdy = ck.to_device(x[::-1].copy()), peers.nhwc(x[::-1].copy())

    def ck_bn():
        out, s = ck.ops.batch_norm(gx, gg, gbeta)
        ck.ops.batch_norm_backward(gdy, gx, gg, s.mean, s.inv_std)

    def torch_bn():
        out = F.batch_norm(tx, None, None, tg, tbeta, training=True, eps=1e-5)
        torch.autograd.grad(out, (tx, tg, tbeta), tdy)

    xp = rng.standard_normal((batch, 112, 112, 64), dtype=np.float32)
    gxp, txp = ck.to_device(xp), peers.nhwc(xp).requires_grad_()
    yp = ck.ops.max_pool(gxp, 3, stride=2, padding=1)
    typ = F.max_pool2d(txp, 3, stride=2, padding=1)
    check_close("max_pool", yp.numpy(), peers.to_host_nhwc(typ), 0.0)
    gdyp, tdyp = ck.to_device(yp.numpy()), peers.nhwc(yp.numpy())

    def ck_pool():
        out, indices = ck.ops.max_pool(gxp, 3, stride=2, padding=1, return_indices=True)
        ck.ops.max_pool_backward(gdyp, gxp, 3, stride=2, padding=1, indices=indices)

    def torch_pool():
        out = F.max_pool2d(txp, 3, stride=2, padding=1)
        torch.autograd.grad(out, (txp,), tdyp)

    gdyg = ck.to_device(np.ones((batch, 256), np.float32))

    def ck_global():
        ck.ops.global_avg_pool(gx)
        ck.ops.global_avg_pool_backward(gdyg, x.shape)

    tdyg = torch.ones((batch, 256), device="cuda")

    def torch_global():
        out = F.adaptive_avg_pool2d(tx, 1).flatten(1)
        torch.autograd.grad(out, (tx,), tdyg)

    sync = (ck.cuda.synchronize, torch.cuda.synchronize)
    return (compare(f"batch_norm n={batch} 56x56x256", {"fwd+bwd": (ck_bn, torch_bn, 0)}, *sync, repeats, rounds)
            + compare(f"max_pool 3x3/2 n={batch} 112x112x64", {"fwd+bwd": (ck_pool, torch_pool, 0)}, *sync,
                      repeats, rounds)
            + compare(f"global_avg_pool n={batch} 56x56x256", {"fwd+bwd": (ck_global, torch_global, 0)}, *sync,
                      repeats, rounds))


class ConvBn:
    """conv (no bias) -> BatchNorm (training statistics) -> optional ReLU, with its backward pass, on Tensors."""

    def __init__(self, ck, rng, c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True):
        self.ck, self.stride, self.padding, self.relu = ck, stride, kernel // 2, relu
        w = rng.standard_normal((kernel, kernel, c_in, c_out), dtype=np.float32) * math.sqrt(2 / (kernel**2 * c_in))
        self.params = [ck.to_device(w), ck.to_device(np.ones(c_out, np.float32)),
                       ck.to_device(np.zeros(c_out, np.float32))]
        self.grads = [None, None, None]
        self.first = False  # the network's first unit needs no input gradient

    def forward(self, x):
        ops, (w, gamma, beta) = self.ck.ops, self.params
        z = ops.conv(x, w, stride=self.stride, padding=self.padding)
        bn, stats = ops.batch_norm(z, gamma, beta)
        y = ops.relu(bn) if self.relu else bn
        self.saved = (x, z, stats, y)
        return y

    def backward(self, dy):
        ops, (w, gamma, _), (x, z, stats, y) = self.ck.ops, self.params, self.saved
        dbn = ops.relu_backward(dy, y) if self.relu else dy
        dz, dgamma, dbeta = ops.batch_norm_backward(dbn, z, gamma, stats.mean, stats.inv_std)
        dx, dw, _ = ops.conv_backward(dz, x, w, stride=self.stride, padding=self.padding,
                                      need=("w",) if self.first else ("x", "w"))
        self.grads = [dw, dgamma, dbeta]
        return dx


class Residual:
    """relu(main(x) + shortcut(x)): ResNet's basic block (two 3x3) or bottleneck (1x1, 3x3 with the stride,
    1x1 to 4x the width, as torchvision), the shortcut a 1x1 ConvBn where the shape changes."""

    def __init__(self, ck, rng, c_in: int, width: int, stride: int, bottleneck: bool):
        self.ck = ck
        c_out = 4 * width if bottleneck else width
        if bottleneck:
            self.main = [ConvBn(ck, rng, c_in, width, 1), ConvBn(ck, rng, width, width, 3, stride),
                         ConvBn(ck, rng, width, c_out, 1, relu=False)]
        else:
            self.main = [ConvBn(ck, rng, c_in, width, 3, stride), ConvBn(ck, rng, width, c_out, 3, relu=False)]
        self.shortcut = ConvBn(ck, rng, c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in != c_out else None
        self.units = self.main + ([self.shortcut] if self.shortcut else [])
        self.c_out = c_out

    def forward(self, x):
        h = x
        for unit in self.main:
            h = unit.forward(h)
        h += self.shortcut.forward(x) if self.shortcut else x
        self.y = self.ck.ops.relu(h)
        return self.y

    def backward(self, dy):
        dsum = self.ck.ops.relu_backward(dy, self.y)
        dh = dsum
        for unit in reversed(self.main):
            dh = unit.backward(dh)
        dh += self.shortcut.backward(dsum) if self.shortcut else dsum
        return dh


class ConvkitResNet:
    """ResNet-18 (CIFAR stem: one 3x3 conv) or ResNet-50 (7x7/2 conv and 3x3/2 max pool stem, bottlenecks),
    global average pool and a dense layer, written with convkit's functional ops on Tensors, with its
    backward pass and convkit.cuda.sgd_step as the optimizer."""

    def __init__(self, ck, rng, depth: int, classes: int):
        self.ck = ck
        bottleneck = depth == 50
        self.stem = ConvBn(ck, rng, 3, 64, 3 if depth == 18 else 7, 1 if depth == 18 else 2)
        self.stem.first = True
        self.pool_stem = depth == 50
        blocks, c_in = [], 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), (2, 2, 2, 2) if depth == 18 else (3, 4, 6, 3))):
            for i in range(count):
                block = Residual(ck, rng, c_in, width, 2 if stage > 0 and i == 0 else 1, bottleneck)
                blocks.append(block)
                c_in = block.c_out
        self.blocks = blocks
        self.dense = ck.to_device(rng.standard_normal((c_in, classes), dtype=np.float32) / math.sqrt(c_in))
        self.units = [self.stem] + [u for b in blocks for u in b.units]
        self.velocities = [ck.to_device(np.zeros(p.shape, np.float32)) for p in self.parameters()]
        self.steps = 0

    def parameters(self):
        return [p for unit in self.units for p in unit.params] + [self.dense]

    def step(self, x, labels) -> float:
        ops = self.ck.ops
        h = self.stem.forward(x)
        if self.pool_stem:
            stem_out = h
            h, pool_indices = ops.max_pool(h, 3, stride=2, padding=1, return_indices=True)
        for block in self.blocks:
            h = block.forward(h)
        pooled = ops.global_avg_pool(h)
        loss, dlogits = ops.softmax_cross_entropy(ops.gemm(pooled, self.dense), labels)
        dense_grad = ops.gemm(pooled, dlogits, transpose_a=True)
        dh = ops.global_avg_pool_backward(ops.gemm(dlogits, self.dense, transpose_b=True), h.shape)
        for block in reversed(self.blocks):
            dh = block.backward(dh)
        if self.pool_stem:
            dh = ops.max_pool_backward(dh, stem_out, 3, stride=2, padding=1, indices=pool_indices)
        self.stem.backward(dh)
        grads = [g for unit in self.units for g in unit.grads] + [dense_grad]
        self.ck.cuda.sgd_step(self.parameters(), grads, self.velocities, [self.steps == 0] * len(grads), lr=0.01,
                              momentum=0.9, weight_decay=5e-4)
        self.steps += 1
        return loss


def torch_resnet(torch, depth: int, classes: int):
    nn = torch.nn

    def conv_bn(c_in, c_out, kernel, stride=1, relu=True):
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))

    class Block(nn.Module):
        def __init__(self, c_in, width, stride, bottleneck):
            super().__init__()
            c_out = 4 * width if bottleneck else width
            self.main = (nn.Sequential(conv_bn(c_in, width, 1), conv_bn(width, width, 3, stride),
                                       conv_bn(width, c_out, 1, relu=False)) if bottleneck else
                         nn.Sequential(conv_bn(c_in, width, 3, stride), conv_bn(width, c_out, 3, relu=False)))
            self.shortcut = (conv_bn(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in != c_out
                             else nn.Identity())
            self.c_out = c_out

        def forward(self, x):
            return torch.relu(self.main(x) + self.shortcut(x))

    layers = [conv_bn(3, 64, 3)] if depth == 18 else [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), (2, 2, 2, 2) if depth == 18 else (3, 4, 6, 3))):
        for i in range(count):
            block = Block(c_in, width, 2 if stage > 0 and i == 0 else 1, depth == 50)
            layers.append(block)
            c_in = block.c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes, bias=False)]
    return nn.Sequential(*layers).cuda().to(memory_format=torch.channels_last)


def train_rows(peers: Peers, batch: int, repeats: int, rounds: int, quick: bool) -> list[dict]:
    torch, ck = peers.torch, peers.convkit
    rng = np.random.default_rng(2)
    rows = []
    for depth, size, classes in ((18, 32, 10), (50, 64 if quick else 224, 1000)):
        x = rng.standard_normal((batch, size, size, 3), dtype=np.float32)
        labels = rng.integers(0, classes, batch)
        ours = ConvkitResNet(ck, rng, depth, classes)
        gx, glabels = ck.to_device(x), ck.to_device(labels)
        model = torch_resnet(torch, depth, classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        tx, tlabels = peers.nhwc(x), torch.from_numpy(labels).cuda()

        def torch_step():
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(tx), tlabels).backward()
            optimizer.step()

        name = f"train step ResNet-{depth} {size}x{size} n={batch}"
        rows += compare(name, {"step": (lambda: ours.step(gx, glabels), torch_step, 0)}, ck.cuda.synchronize,
                        torch.cuda.synchronize, repeats, rounds)
    return rows


SUITES = ("conv", "norm_pool", "train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated among {', '.join(SUITES)}")
    parser.add_argument("--layers", default="", help="conv layers by name or 1-based position (default: all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tf32", action="store_true", help="allow TF32 in both libraries")
    parser.add_argument("--quick", action="store_true", help="batch 4, 3 repeats, one round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    if not set(suites) <= set(SUITES):
        parser.error(f"--suites: choose among {', '.join(SUITES)}, got {args.suites!r}")
    try:
        import torch
    except ImportError:
        raise SystemExit("bench_cuda.py compares with PyTorch: install torch with CUDA") from None
    import convkit

    if not torch.cuda.is_available() or not convkit.cuda.is_available():
        raise SystemExit(f"needs a GPU for both libraries (torch: {torch.cuda.is_available()}, convkit: "
                         f"{convkit.runtime.config()['cuda']})")
    batch, repeats, rounds = (4, 3, 1) if args.quick else (args.batch, args.repeats, 2)
    tolerance = 5e-3 if args.tf32 else 1e-3
    peers = Peers(torch, args.tf32)
    layers = common.select(args.layers, CONV_LAYERS, "--layers", parser, by_index=True)
    rows = []
    for suite in suites:
        print(f"running {suite} ...", file=sys.stderr, flush=True)
        if suite == "conv":
            rows += conv_rows(peers, layers, batch, repeats, rounds, tolerance)
        elif suite == "norm_pool":
            rows += norm_pool_rows(peers, batch, repeats, rounds, tolerance)
        else:
            rows += train_rows(peers, batch, repeats, rounds, args.quick)
    conv_ratios = [r["ratio"] for r in rows if r["case"].startswith("conv ")]
    summary = [{"case": "conv suite geomean", "ratio": common.geomean(conv_ratios)}] if conv_ratios else []
    header = {"gpu": convkit.cuda.device_description(), "torch": torch.__version__,
              "cudnn": torch.backends.cudnn.version(), "tf32": args.tf32, "batch": batch, "repeats": repeats}
    if not args.json:
        print(" ".join(f"{k}={v}" for k, v in header.items()))
    common.print_table(rows, ["case", "pass", "convkit ms", "torch ms", "convkit TFLOP/s", "ratio"], args.json, header,
                       summary)


if __name__ == "__main__":
    main()
