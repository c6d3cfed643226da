"""One optimizer step over a network's parameters: convkit's fused C++ update against NumPy in-place arithmetic
and torch.optim (both its per-tensor loop and foreach=True), timed in alternation in one run.

    python benchmarks/bench_optim.py --threads 2
    python benchmarks/bench_optim.py --threads 1 --json

Parameter sets: ResNet-18's (11.7M float32 values in 62 tensors) and the course's LeNet-5 (61,706 in 10).
Prints milliseconds per step, GB/s of parameter and state traffic (5 float32 accesses per value for SGD with
momentum, 7 for Adam), and ratio = time / convkit's time for the same optimizer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)


def resnet18_shapes():
    shapes = [(7, 7, 3, 64), (64,), (64,)]
    c_in = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            first_in = c_in if block == 0 else c_out
            shapes += [(3, 3, first_in, c_out), (c_out,), (c_out,), (3, 3, c_out, c_out), (c_out,), (c_out,)]
            if block == 0 and (stride != 1 or c_in != c_out):
                shapes += [(1, 1, c_in, c_out), (c_out,), (c_out,)]
        c_in = c_out
    return shapes + [(512, 1000), (1000,)]


LENET5_SHAPES = [(5, 5, 1, 6), (6,), (5, 5, 6, 16), (16,), (400, 120), (120,), (120, 84), (84,), (84, 10), (10,)]
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke test (`convkit bench --quick`)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
    common.pin_threads(args.threads)

    import numpy as np

    import convkit
    from convkit.optim import SGD, Adam
    from convkit.parameter import Parameter

    convkit.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    rng = np.random.default_rng(0)
    rows = []
    for net, shapes in (("ResNet-18", resnet18_shapes()), ("LeNet-5", LENET5_SHAPES)):
        params = [Parameter(f"p{i}", rng.standard_normal(s).astype(np.float32)) for i, s in enumerate(shapes)]
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        count = sum(p.size for p in params)
        velocities = [np.zeros_like(p.value) for p in params]
        scratch = [np.empty_like(p.value) for p in params]

        def numpy_sgd():
            for p, v, tmp in zip(params, velocities, scratch):
                np.multiply(p.value, WEIGHT_DECAY, out=tmp)
                tmp += p.grad
                v *= MOMENTUM
                v += tmp
                np.multiply(v, LR, out=tmp)
                p.value -= tmp

        peers = {"numpy in place": numpy_sgd}
        ours = {"sgd": SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY).step,
                "adam": Adam(params, lr=1e-3).step}
        if torch is not None:
            tensors = [torch.from_numpy(p.value.copy()) for p in params]
            for t, p in zip(tensors, params):
                t.grad = torch.from_numpy(p.grad)
            for foreach in (False, True):
                peers[f"torch sgd foreach={foreach}"] = torch.optim.SGD(
                    tensors, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, foreach=foreach).step
                peers[f"torch adam foreach={foreach}"] = torch.optim.Adam(tensors, lr=1e-3, foreach=foreach).step
        calls = {**{f"convkit {k}": f for k, f in ours.items()}, **peers}
        times = alternate(calls, args.repeats)
        for name, seconds in times.items():
            kind = "adam" if "adam" in name else "sgd"
            accesses = 7 if kind == "adam" else 5  # per value: read p, g, v (and s), write p, v (and s)
            rows.append({"net": net, "values": count, "tensors": len(params), "impl": name, "ms": seconds * 1e3,
                         "gb_per_s": accesses * 4 * count / seconds / 1e9,
                         "ratio": seconds / times[f"convkit {kind}"]})

    if args.json:
        print(json.dumps({"machine": common.describe_machine(args.threads), "rows": rows}, indent=1))
    else:
        print(f"# optimizer step, float32, {args.threads} thread(s); ratio = time / convkit time (same optimizer)")
        print("\n".join(common.machine_lines(common.describe_machine(args.threads))))
        print(f"{'net':<10} {'implementation':<28} {'ms/step':>9} {'GB/s':>7} {'ratio':>6}")
        for r in rows:
            print(f"{r['net']:<10} {r['impl']:<28} {r['ms']:>9.3f} {r['gb_per_s']:>7.1f} {r['ratio']:>6.2f}")
    return 0


def alternate(calls, repeats, sample_seconds=0.05):
    """Median seconds per call of each call, the calls run in turn within each repeat (so drift hits them
    alike), each after a pause that lets the previous library's worker threads stop spinning (common.settle).
    A sample repeats a short call for about sample_seconds, so that waking the threads does not dominate."""
    import statistics
    import time

    inner = {}
    for name, call in calls.items():  # warm-up, and how many calls make one sample
        start = time.perf_counter()
        call()
        inner[name] = max(1, int(sample_seconds / max(time.perf_counter() - start, 1e-9)))
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            common.settle()
            start = time.perf_counter()
            for _ in range(inner[name]):
                call()
            samples[name].append((time.perf_counter() - start) / inner[name])
    return {name: statistics.median(s) for name, s in samples.items()}


if __name__ == "__main__":
    sys.exit(main())
