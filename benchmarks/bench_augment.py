"""Augmentation throughput (images/s) on CIFAR-size uint8 batches, against a ResNet-20 training budget.

    python benchmarks/bench_augment.py               # 256 x 32 x 32 x 3 uint8 batches, 1 and 2 threads
    python benchmarks/bench_augment.py --quick --json

Each pipeline (convkit.data.augmentations, parameters drawn from a seeded generator, as a DataLoader runs
it) is timed on 1 and 2 threads, alternating the thread counts round by round in this one process so that
noise on a shared machine hits both alike; a time is the median of --repeats calls after a warm-up.

The budget: the 3x3 convolutions of ResNet-20 for CIFAR (7 at 16 channels on 32x32, 6 at 32 on 16x16,
6 at 64 on 8x8), forward and backward (convkit.ops.conv2d and conv_backward, float32, batch 256), timed on
each thread count in the same run. It leaves out everything else in a training step, so the real step is
slower: the budget is an upper bound on how many images per second training can consume, and "share" =
budget images/s / augmentation images/s (same thread count) is the most augmentation adds to a step.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

RESNET20_STAGES = [(16, 32, 7), (32, 16, 6), (64, 8, 6)]  # channels, spatial size, number of 3x3 convs


def pipelines():
    from convkit.data import augmentations as A

    return {
        "flip + crop pad 4 (CIFAR)": A.Compose([A.RandomFlip("horizontal"), A.RandomCrop(32, padding=4)]),
        "rotation +-15": A.RandomRotation(15),
        "resized crop 32": A.RandomResizedCrop(32),
        "colour jitter 0.4": A.ColorJitter(0.4, 0.4, 0.4),
        "lens distortion 0.2": A.RandomLensDistortion(0.2),
    }


def resnet20_images_per_second(batch: int, repeats: int) -> float:
    import numpy as np

    from convkit import ops

    rng = np.random.default_rng(0)
    seconds = 0.0
    for channels, size, count in RESNET20_STAGES:
        x = rng.standard_normal((batch, size, size, channels), dtype=np.float32)
        w = rng.standard_normal((3, 3, channels, channels), dtype=np.float32) * 0.1
        dy = rng.standard_normal((batch, size, size, channels), dtype=np.float32)

        def step():
            ops.conv2d(x, w, padding="same")
            ops.conv_backward(dy, x, w, padding="same")

        seconds += count * common.median_seconds(step, repeats)
    return batch / seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the thread counts")
    parser.add_argument("--quick", action="store_true", help="tiny batches, one round (smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.rounds = 8, 2, 1
    common.pin_threads(max(args.threads))

    import numpy as np

    import convkit

    x = np.random.default_rng(0).integers(0, 256, (args.batch, 32, 32, 3), dtype=np.uint8)
    best = {}  # (pipeline, threads) -> fastest median over the rounds
    for _ in range(args.rounds):
        for name, pipeline in pipelines().items():
            for threads in args.threads:
                convkit.set_num_threads(threads)
                rng = np.random.default_rng(1)
                t = common.median_seconds(lambda: pipeline(x, rng), args.repeats)
                best[name, threads] = min(best.get((name, threads), t), t)
    budget = {}
    for threads in args.threads:
        convkit.set_num_threads(threads)
        budget[threads] = resnet20_images_per_second(args.batch, args.repeats)

    rows = []
    for name in pipelines():
        row = {"pipeline": name}
        for threads in args.threads:
            row[f"images/s {threads}T"] = round(args.batch / best[name, threads])
        for threads in args.threads:
            row[f"share {threads}T"] = f"{100 * budget[threads] * best[name, threads] / args.batch:.1f}%"
        rows.append(row)
    header = common.describe_machine(max(args.threads))
    header.update(batch=args.batch, resnet20_conv_budget_images_per_s={t: round(b) for t, b in budget.items()})
    columns = ["pipeline", *(f"images/s {t}T" for t in args.threads), *(f"share {t}T" for t in args.threads)]
    if not args.json:
        print("\n".join(common.machine_lines(header)))
        print(f"batch {args.batch}x32x32x3 uint8; ResNet-20 3x3 convs forward+backward, images/s at most: "
              + ", ".join(f"{b:.0f} on {t} thread{'s' if t > 1 else ''}" for t, b in budget.items()))
    common.print_table(rows, columns, args.json, header)


if __name__ == "__main__":
    main()
