"""Data-parallel training over MPI: images/s of the CIFAR ResNet-18 step on 1 and 2 ranks, and the bandwidth
of MPI_Allreduce against the message size.

    python benchmarks/bench_distributed.py                 # 2 rounds of 1 rank and 2 ranks, ~3 minutes
    python benchmarks/bench_distributed.py --steps 10 --json
    python benchmarks/bench_distributed.py --quick         # tiny network and messages (smoke test)

Needs mpi4py and mpiexec (pip install ".[mpi]"). This script launches itself with `mpiexec -n K ...
--worker` (K = 1, then 2, alternating for --rounds rounds: the machine's load drifts, so each world size
gets samples from every phase), each rank with 1 OpenMP thread (OMP_NUM_THREADS=1: on a 2-core machine two
ranks then use both cores, as one rank with 2 threads would).

Training step (per rank): forward (training mode), softmax cross-entropy (mean), backward without the input
gradient, gradient averaging over the ranks (convkit.distributed.GradientAverager: 25 MB buckets, all-reduce
started during backward), SGD (lr 0.01, momentum 0.9, weight decay 5e-4), float32, batch --batch per rank on
fixed random 32x32x3 data (benchmarks/bench_train.py's network and data). images/s = world size x batch /
median step time (weak scaling: every rank trains its own batch); efficiency = images/s of K ranks /
(K x images/s of 1 rank). With 2 ranks the step is also timed with the all-reduce started only after the
whole backward pass (overlap off), alternating with the default in the same processes.

All-reduce: MPI_Allreduce (sum, in place) of float32 buffers from 1 KiB to 64 MiB on 2 ranks, each size
timed --repeats times after a barrier; the median time t gives the algorithm bandwidth bytes / t (for 2
ranks also NCCL-tests' "bus bandwidth", 2 (K - 1) / K x bytes / t).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (pins BLAS threads before NumPy loads)

KIB = 1024
MESSAGE_BYTES = [KIB * 4**i for i in range(9)]  # 1 KiB, 4 KiB, ..., 64 MiB


# ---- the worker, one per rank, under mpiexec ------------------------------------------------------------------

def step_seconds(model, averager, x, labels, steps: int) -> list:
    """Seconds of each of `steps` training steps (after one warm-up step), between barriers; averager None:
    the single-process step (no averaging)."""
    from bench_train import LR, MOMENTUM, WEIGHT_DECAY

    from convkit import distributed, losses
    from convkit.optim import SGD

    loss_fn = losses.get("softmax_cross_entropy")
    optimizer = SGD(model.trainable_parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    times = []
    for _ in range(steps + 1):
        distributed.barrier()
        start = time.perf_counter()
        loss, dlogits = loss_fn(model.forward(x, training=True), labels)
        optimizer.zero_grad()
        model.backward(dlogits, input_gradient=False)
        if averager is not None:
            averager.synchronize()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def allreduce_seconds(comm, nbytes: int, repeats: int) -> float:
    import numpy as np
    from mpi4py import MPI

    buffer = np.ones(nbytes // 4, dtype=np.float32)
    times = []
    for _ in range(repeats + 1):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def worker(args) -> None:
    from bench_train import NETS, convkit_model, make_data

    import convkit
    from convkit import distributed

    rank, world_size = distributed.init()
    convkit.random.seed(0)
    net = next(n for n in NETS if n.name == "resnet18")
    _, input_shape = net.shapes(args.quick)
    model = convkit_model("resnet18", input_shape)
    x, labels = make_data(args.batch, input_shape)
    model.forward(x[:2], training=False)  # builds it
    distributed.broadcast_parameters(model)
    params = model.trainable_parameters()
    result = {"world_size": world_size, "parameters": sum(p.size for p in params),
              "buckets": len(distributed.plan_buckets(params, distributed.DEFAULT_BUCKET_BYTES)),
              "step_seconds": {}, "allreduce_seconds": {}}
    modes = ["during backward", "after backward"] if world_size > 1 else ["none (1 rank)"]
    samples = {mode: [] for mode in modes}
    for _ in range(2):  # with 2 ranks: overlap on and off in alternation
        for mode in modes:
            averager = (distributed.GradientAverager(model, distributed.comm(), overlap=mode == "during backward")
                        if world_size > 1 else None)
            samples[mode] += step_seconds(model, averager, x, labels, args.steps)
            if averager is not None:
                averager.close()
    result["step_seconds"] = samples
    if world_size > 1:
        sizes = MESSAGE_BYTES[:4] if args.quick else MESSAGE_BYTES
        for nbytes in sizes:
            repeats = args.repeats if nbytes <= 4 * 2**20 else max(3, args.repeats // 4)
            result["allreduce_seconds"][nbytes] = allreduce_seconds(distributed.comm(), nbytes, repeats)
    if rank == 0:
        print(json.dumps(result))


# ---- the driver -----------------------------------------------------------------------------------------------

def mpiexec() -> list:
    path = shutil.which("mpiexec", path=sysconfig.get_path("scripts")) or shutil.which("mpiexec")
    if path is None:
        sys.exit("bench_distributed: mpiexec not found: pip install \".[mpi]\" (or install Open MPI / MPICH)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.lower()
    return [path, "--oversubscribe"] if "open" in version else [path]


def run_world(size: int, args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1",
           "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    command = [*mpiexec(), "-n", str(size), sys.executable, __file__, "--worker", "--batch", str(args.batch),
               "--steps", str(args.steps), "--repeats", str(args.repeats), *(["--quick"] if args.quick else [])]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench_distributed: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="images per rank and step (default 32)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode and half-round (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of 1 and 2 ranks (default 2)")
    parser.add_argument("--repeats", type=int, default=20, help="all-reduce timings per size (default 20)")
    parser.add_argument("--quick", action="store_true", help="16x16 inputs, batch 2, 1 KiB..64 KiB messages")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.steps, args.rounds, args.repeats = 2, 1, 1, 3
    if args.worker:
        worker(args)
        return
    runs = {1: [], 2: []}
    for round_ in range(args.rounds):
        for size in (1, 2):
            print(f"round {round_ + 1}/{args.rounds}: {size} rank(s)", file=sys.stderr, flush=True)
            runs[size].append(run_world(size, args))
    report(runs, args)


def report(runs: dict, args) -> None:
    rows = []
    for size, results in runs.items():
        for mode in results[0]["step_seconds"]:
            median = statistics.median(t for r in results for t in r["step_seconds"][mode])
            rows.append({"ranks": size, "all-reduce": mode, "ms/step": 1e3 * median,
                         "images/s": size * args.batch / median})
    for row in rows:
        row["efficiency"] = row["images/s"] / (row["ranks"] * rows[0]["images/s"])
    bandwidth = []
    for nbytes in runs[2][0]["allreduce_seconds"]:
        seconds = statistics.median(r["allreduce_seconds"][nbytes] for r in runs[2])
        nbytes = int(nbytes)
        size = f"{nbytes // 2**20} MiB" if nbytes >= 2**20 else f"{nbytes // KIB} KiB"
        bandwidth.append({"size": size, "bytes": nbytes, "us": 1e6 * seconds, "algbw GB/s": nbytes / seconds / 1e9,
                          "busbw GB/s": nbytes / seconds / 1e9})  # 2 (K - 1) / K = 1 for K = 2
    header = {**common.describe_machine(1), "load": os.getloadavg(), "batch_per_rank": args.batch,
              "parameters": runs[1][0]["parameters"], "buckets": runs[1][0]["buckets"]}
    if args.json:
        print(json.dumps({"machine": header, "training": rows, "allreduce": bandwidth}, indent=2))
        return
    print(f"# {header['cpu']}, {header['cores']} cores, load {header['load'][0]:.1f}; ResNet-18 (CIFAR), "
          f"{header['parameters']:,} parameters in {header['buckets']} buckets, batch {args.batch} per rank")
    common.print_table(rows, ["ranks", "all-reduce", "ms/step", "images/s", "efficiency"], False, header)
    print()
    common.print_table(bandwidth, ["size", "us", "algbw GB/s", "busbw GB/s"], False, header)


if __name__ == "__main__":
    main()
