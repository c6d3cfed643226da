"""Where one convkit training step spends its time, layer by layer: C++ kernels against Python around them.

    python benchmarks/profile_step.py                    # LeNet-5, batch 64, 2 threads
    python benchmarks/profile_step.py --net resnet18 --steps 5 --threads 1

The networks, batches and step (forward, softmax cross-entropy, backward, SGD with momentum) are
bench_train.py's. Every layer's forward and backward is wrapped in a timer, and so is every function of the
extension module convkit._C (the ops look them up at each call): a layer's "C++ ms" is the time inside
_C calls made during its forward or backward (kernels, plus pybind11's argument conversion, ~1 us a call),
its "Python ms" the rest (validation, shape math, allocation of outputs, NumPy glue). Rows "loss" and
"optimizer" are the loss call and zero_grad + step; "network" is the step's time outside every layer, loss
and optimizer (Sequential/Model bookkeeping). Each entry is its fastest over --steps steps after two warm-up
steps (on a loaded machine a descheduled process loses whole time slices wherever it happens to be); "sum"
adds the rows (a step without preemption), and % is of that sum. The timers add ~1 us per wrapped call.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)


class StepClock:
    """Accumulates wall time per (bucket, 'total' | 'C++') within one step; `current` is the bucket that C++
    calls are charged to."""

    def __init__(self) -> None:
        self.times: dict = defaultdict(float)
        self.current: list[str] = []

    def timed(self, bucket: str, call: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            self.current.append(bucket)
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.times[bucket, "total"] += time.perf_counter() - start
                self.current.pop()

        return wrapper

    def kernel(self, call: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                if self.current:
                    self.times[self.current[-1], "C++"] += time.perf_counter() - start

        return wrapper


def instrument(model, clock: StepClock) -> list[str]:
    """Wrap every layer's forward/backward and every _C function; returns the buckets in forward order."""
    from convkit import _C

    for name in dir(_C):
        function = getattr(_C, name)
        if callable(function) and type(function).__name__ == "builtin_function_or_method":
            setattr(_C, name, clock.kernel(function))
    buckets = []
    for layer in model.layers:
        for direction in ("forward", "backward"):
            bucket = f"{layer.name} {direction}"
            setattr(layer, direction, clock.timed(bucket, getattr(layer, direction)))
            buckets.append(bucket)
    return buckets


def profiled_step(model, clock: StepClock) -> Callable:
    from convkit import losses
    from convkit.optim import SGD

    from bench_train import LR, MOMENTUM, WEIGHT_DECAY

    loss_fn = clock.timed("loss", losses.get("softmax_cross_entropy"))
    optimizer = SGD(model.trainable_parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    zero_grad, step = clock.timed("optimizer", optimizer.zero_grad), clock.timed("optimizer", optimizer.step)

    def train_step(x, labels) -> None:
        _, dlogits = loss_fn(model.forward(x, training=True), labels)
        zero_grad()
        model.backward(dlogits, input_gradient=False)
        step()

    return clock.timed("step", train_step)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="lenet5", help="a network of bench_train.py (default lenet5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="bench_train.py's tiny batch and input")
    args = parser.parse_args(argv)
    common.pin_threads(args.threads)

    import convkit

    import bench_train

    nets = {net.name: net for net in bench_train.NETS}
    if args.net not in nets:
        parser.error(f"unknown network {args.net!r}; known: {list(nets)}")
    convkit.set_num_threads(args.threads)
    batch, input_shape = nets[args.net].shapes(args.quick)
    model = bench_train.convkit_model(args.net, input_shape)
    x, labels = bench_train.make_data(batch, input_shape)
    clock = StepClock()
    buckets = [*instrument(model, clock), "loss", "optimizer"]
    step = profiled_step(model, clock)
    steps = []
    for i in range(args.steps + 2):
        clock.times.clear()
        step(x, labels)
        if i >= 2:  # warm-up
            steps.append(dict(clock.times))
    # The fastest of each bucket over the steps: on a loaded machine a descheduled process loses whole time
    # slices (~30 ms here) wherever it happens to be, which would swamp the small buckets.
    def ms(bucket: str, kind: str) -> float:
        return 1e3 * min(times.get((bucket, kind), 0.0) for times in steps)

    fastest = ms("step", "total")
    median = 1e3 * statistics.median(times["step", "total"] for times in steps)
    print(f"# {args.net}, batch {batch}, {'x'.join(map(str, input_shape))}, {args.threads} thread(s), "
          f"{args.steps} steps: fastest {fastest:.2f} ms ({batch / fastest * 1e3:.0f} img/s), median {median:.2f} ms")
    network = 1e3 * min(times["step", "total"] - sum(times.get((b, "total"), 0.0) for b in buckets) for times in steps)
    total = sum(ms(bucket, "total") for bucket in buckets) + network
    print("\n".join(common.machine_lines(common.describe_machine(args.threads))))
    print("| where | ms | C++ ms | Python ms | % of step |")
    print("|---|---|---|---|---|")
    for bucket in buckets:
        spent, kernel = ms(bucket, "total"), ms(bucket, "C++")
        print(f"| {bucket} | {spent:.3f} | {kernel:.3f} | {spent - kernel:.3f} | {100 * spent / total:.1f} |")
    kernels = sum(ms(bucket, "C++") for bucket in buckets)
    print(f"| network (outside the layers) | {network:.3f} | 0 | {network:.3f} | {100 * network / total:.1f} |")
    print(f"| **sum** | {total:.3f} | {kernels:.3f} | {total - kernels:.3f} | 100 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
