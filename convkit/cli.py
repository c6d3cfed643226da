"""The `convkit` command (also `python -m convkit`): train, evaluate, summary, bench.

    convkit train                      # LeNet-5 (modernised) on the bundled 8x8 digits, well under a minute
    convkit train --model resnet_cifar --data cifar10 ~/data/cifar-10-batches-bin --augment --epochs 30
    mpiexec -n 4 convkit train ...     # data-parallel over 4 processes (convkit.distributed)
    convkit evaluate runs/lenet5_modern-digits/best.ckpt --data digits
    convkit summary resnet50 --input-shape 224,224,3
    convkit bench --quick
"""
from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import __version__

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "folder")
SCHEDULES = ("none", "step", "cosine", "plateau", "inverse-time")


@dataclasses.dataclass
class Dataset:
    """Float32 channels-last images in [0, 1] and int64 labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def _as_float_images(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


def load_dataset(spec: Sequence[str], *, seed: int = 0, image_size: Optional[tuple] = None) -> Dataset:
    """`spec` as given to --data: ['digits'], or [name, DIR] for the file-based sets."""
    from . import data

    name, rest = spec[0], list(spec[1:])
    if name not in DATASETS:
        raise SystemExit(f"convkit: --data must start with one of {', '.join(DATASETS)}, got {name!r}")
    if name == "digits":
        if rest:
            raise SystemExit(f"convkit: --data digits takes no directory, got {rest}")
        return Dataset(name, *data.load_digits("train", seed=seed), *data.load_digits("test", seed=seed))
    if len(rest) != 1:
        raise SystemExit(f"convkit: --data {name} needs one directory, e.g. --data {name} ~/data/{name}; got {rest}")
    root = Path(rest[0]).expanduser()
    if not root.is_dir():
        raise SystemExit(f"convkit: --data {name}: {str(root)!r} is not a directory")
    if name == "folder":
        x, y = data.load_image_folder(root, size=image_size)
        test = np.zeros(len(y), bool)
        test[np.random.default_rng(seed).permutation(len(y))[: len(y) // 5]] = True  # 20% held out for testing
        x = _as_float_images(x)
        return Dataset(name, x[~test], y[~test], x[test], y[test])
    loader = {"mnist": data.load_mnist, "fashion-mnist": data.load_fashion_mnist, "cifar10": data.load_cifar10}[name]
    (x_train, y_train), (x_test, y_test) = loader(root, "train"), loader(root, "test")
    return Dataset(name, _as_float_images(x_train), y_train, _as_float_images(x_test), y_test)


def standardized(dataset: Dataset) -> Dataset:
    """The dataset with every image standardised per channel by the training images' mean and spread.

    Fitted on x_train only, so `convkit evaluate` rebuilds exactly the same transform from the same data."""
    from .preprocessing import ChannelStandardization

    scaler = ChannelStandardization().fit(dataset.x_train)
    return dataclasses.replace(dataset, x_train=scaler.transform(dataset.x_train).astype(np.float32),
                               x_test=scaler.transform(dataset.x_test).astype(np.float32))


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 224,224,3, got {text!r}") from None
    if not shape or any(v < 1 for v in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 224,224,3, got {text!r}")
    return shape


def _parse_option(text: str) -> tuple:
    """'alpha=0.25' -> ('alpha', 0.25): values are Python literals, or plain strings."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. alpha=0.25), got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build_model(name: str, input_shape: tuple, classes: int, options: Dict[str, object]):
    from . import models

    if name not in models.MODELS:
        raise SystemExit(f"convkit: unknown model {name!r}; known models: {', '.join(models.available())}")
    try:
        return models.get(name, input_shape=input_shape, classes=classes, **options)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"convkit: cannot build {name!r} for inputs {input_shape} and {classes} classes: {error}")


# ---- train ------------------------------------------------------------------------------------------------

def _fresh_run_dir(base: Path) -> Path:
    """base, or base-2, base-3, ... : a new run never writes into (and over) an earlier run's files."""
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _schedule(args, optimizer):
    from . import schedules

    if args.schedule == "none":
        return None
    if args.schedule == "step":
        return schedules.StepLR(optimizer, step_size=max(1, args.epochs // 3), gamma=0.1)
    if args.schedule == "cosine":
        return schedules.CosineDecay(optimizer, total_epochs=args.epochs, warmup_epochs=min(2, args.epochs - 1))
    if args.schedule == "plateau":
        return schedules.ReduceLROnPlateau(optimizer, monitor="val_loss", factor=0.1, patience=3)
    return schedules.InverseTimeDecay(optimizer, decay=0.1)


def _augmentation(dataset: Dataset):
    """The course's recipes: small shifts and rotations (±5°) for digits, flips and padded crops for photos."""
    from .data import augmentations as aug

    height, width = dataset.input_shape[:2]
    if dataset.name in ("cifar10", "folder"):
        return aug.Compose([aug.RandomFlip("horizontal"), aug.RandomCrop((height, width), padding=height // 8)])
    return aug.Compose([aug.RandomCrop((height, width), padding=max(1, height // 8)), aug.RandomRotation(5.0)])


RUN_FILES = ("last.ckpt", "best.ckpt", "history.csv", "result.json")


def _threads_per_rank() -> int:
    """Under MPI without --threads or OMP_NUM_THREADS: the machine's cores shared among its ranks."""
    from .distributed import runtime

    if runtime.world_size() == 1 or "OMP_NUM_THREADS" in os.environ:
        return 0
    return max(1, (os.cpu_count() or 1) // runtime.local_size())


def _silent(*args, **kwargs) -> None:
    pass


def cmd_train(args) -> int:
    import convkit
    from . import callbacks, distributed, optim, plotting, random as ck_random, saving

    # Under mpiexec / mpirun, fit trains data-parallel over the ranks; rank 0 alone prints and writes the run.
    rank, world_size = distributed.init()
    print = builtins.print if rank == 0 else _silent
    threads = args.threads or _threads_per_rank()
    if threads:
        convkit.set_num_threads(threads)
    if args.out and not args.resume:
        taken = [name for name in RUN_FILES if (Path(args.out) / name).exists()]
        if taken:
            raise SystemExit(f"convkit: --out {args.out!r} already holds a run ({', '.join(taken)}); choose another "
                             f"folder, or continue that run with --resume {Path(args.out) / 'last.ckpt'}")
    resume_state = saving.read_metadata(args.resume).get("training") if args.resume else None
    if resume_state:
        for key in ("model", "data", "batch_size", "seed", "schedule", "augment", "model_option"):
            setattr(args, key, resume_state["args"][key])
    ck_random.seed(args.seed)  # dropout masks and initial weights
    processes = f" in each of {world_size} processes (MPI)" if world_size > 1 else ""
    print(f"convkit {__version__}: {convkit.get_num_threads()} threads{processes}", flush=True)
    dataset = standardized(load_dataset(args.data, seed=args.seed))
    print(f"data: {dataset.name}, {len(dataset.x_train)} training and {len(dataset.x_test)} test images of "
          f"shape {dataset.input_shape}, {dataset.classes} classes", flush=True)

    if args.resume:
        model = convkit.load_model(args.resume)
        out_dir = Path(args.out) if args.out else Path(args.resume).parent
    else:
        model = build_model(args.model, dataset.input_shape, dataset.classes, dict(args.model_option))
        out_dir = Path(args.out) if args.out else _fresh_run_dir(Path("runs") / f"{args.model}-{dataset.name}")
    out_dir = Path(distributed.broadcast_object(str(out_dir)))  # rank 0's choice: another rank might see its files
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    groups = optim.param_groups_by_decay(model.trainable_parameters(), args.weight_decay)
    optimizer = optim.SGD(groups, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                          weight_decay=args.weight_decay)
    model.compile(optimizer=optimizer, loss="softmax_cross_entropy", metrics=["accuracy"])
    schedule = _schedule(args, optimizer)
    initial_epoch, history = 0, {}
    if resume_state:
        saving.load_optimizer_state(args.resume, optimizer)
        initial_epoch, history = resume_state["epoch"], resume_state["history"]
        if schedule is not None and resume_state.get("schedule"):
            schedule.load_state_dict(resume_state["schedule"])
        ck_random.set_state(resume_state["random"])
        print(f"resuming from {args.resume} after epoch {initial_epoch}", flush=True)
    if initial_epoch >= args.epochs:
        raise SystemExit(f"convkit: the checkpoint already finished epoch {initial_epoch}; ask for more with --epochs")
    if args.verbose:
        model.summary(print_fn=print)

    run_args = {key: getattr(args, key) for key in
                ("model", "data", "batch_size", "seed", "schedule", "augment", "model_option", "epochs")}
    resumable = callbacks.RunCheckpoint(out_dir / "last.ckpt", run_args, schedule=schedule, history=history)
    best = callbacks.ModelCheckpoint(out_dir / "best.ckpt", monitor="val_accuracy", save_best_only=True)
    best.best = max(history.get("val_accuracy", []), default=best.best)  # a resumed run keeps its best so far
    cbs = [callbacks.TerminateOnNaN(),
           *([callbacks.LearningRateScheduler(schedule)] if schedule is not None else []),
           best,
           callbacks.CSVLogger(out_dir / "history.csv", append=bool(args.resume)),
           resumable]  # last: it saves the optimizer with the next epoch's learning rate already set
    n_val = max(1, len(dataset.x_train) // 10)  # the last tenth of the training set is held out for validation
    x_fit, y_fit = dataset.x_train[:-n_val], dataset.y_train[:-n_val]
    x_val, y_val = dataset.x_train[-n_val:], dataset.y_train[-n_val:]
    started = time.perf_counter()
    fit = model.fit(x_fit, y_fit, batch_size=args.batch_size, epochs=args.epochs, initial_epoch=initial_epoch,
                    validation_data=(x_val, y_val), callbacks=cbs, seed=args.seed, shuffle=True,
                    augment=_augmentation(dataset) if args.augment else None, verbose=1 if args.verbose else 2)
    elapsed = time.perf_counter() - started
    if fit.interrupted:
        print(f"\ninterrupted. The last completed epoch ({resumable.epochs_done}) is saved in {out_dir / 'last.ckpt'};"
              f" continue with:\n  convkit train --resume {out_dir / 'last.ckpt'} --epochs {args.epochs}", flush=True)
        return 130
    if rank != 0:
        return 0
    test = model.evaluate(dataset.x_test, dataset.y_test, batch_size=256)
    curves = plotting.write_training_curves(resumable.history, out_dir)
    print(f"trained {args.epochs - initial_epoch} epochs in {elapsed:.1f} s", flush=True)
    print(f"test accuracy: {100 * test['accuracy']:.2f}% (loss {test['loss']:.4f}) on {len(dataset.x_test)} "
          "held-out images", flush=True)
    print(f"wrote {out_dir / 'last.ckpt'}, {out_dir / 'best.ckpt'}, {out_dir / 'history.csv'} and {curves}",
          flush=True)
    (out_dir / "result.json").write_text(json.dumps({"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                                                      "seconds": elapsed, **run_args}, indent=2))
    return 0


# ---- evaluate / summary / bench -----------------------------------------------------------------------------

def cmd_evaluate(args) -> int:
    import convkit

    model = convkit.load_model(args.checkpoint)
    dataset = standardized(load_dataset(args.data, seed=args.seed))
    model.compile(optimizer="sgd", loss="softmax_cross_entropy", metrics=["accuracy"])
    result = model.evaluate(dataset.x_test, dataset.y_test, batch_size=args.batch_size)
    predictions = np.argmax(model.predict(dataset.x_test, batch_size=args.batch_size), axis=-1)
    print(f"{args.checkpoint}: test accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f} on "
          f"{len(dataset.x_test)} images of {dataset.name}")
    print("per class:  " + "  ".join(
        f"{c}: {100 * np.mean(predictions[dataset.y_test == c] == c):.1f}%"
        for c in range(dataset.classes) if np.any(dataset.y_test == c)))
    return 0


def cmd_summary(args) -> int:
    model = build_model(args.model, args.input_shape, args.classes, dict(args.model_option))
    model.summary(print_fn=print)
    return 0


def benchmarks_dir() -> Optional[Path]:
    """The repository's benchmarks/ folder: next to the package in a source checkout, or in the current dir."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "benchmarks" / "common.py").is_file():
            return root / "benchmarks"
    return None


BENCHMARKS = ("bench_gemm.py", "bench_conv.py", "bench_norm_pool.py", "bench_optim.py", "bench_augment.py",
              "bench_train.py", "profile_step.py")
# The C++ benchmark executable that setup.py links next to the extension (see csrc/bench/executable/).
NATIVE_BENCH = "convkit-bench"


def native_bench_path() -> Path:
    """Where the installed (or in-place built) convkit-bench executable lives; it may be absent."""
    return Path(__file__).resolve().parent / "bin" / NATIVE_BENCH


def cmd_bench(args) -> int:
    chosen = [NATIVE_BENCH] if args.native else (args.only or [NATIVE_BENCH, *BENCHMARKS])
    passed_on = [*(["--quick"] if args.quick else []), *args.extra]
    commands = []
    if NATIVE_BENCH in chosen:
        if native_bench_path().is_file():
            commands.append((NATIVE_BENCH, [str(native_bench_path()), *passed_on]))
        elif args.native or args.only:
            raise SystemExit(f"convkit bench: {str(native_bench_path())!r} is missing: the executable is linked with "
                             "the extension (pip install . or python setup.py build_ext --inplace); see the build log")
        else:
            print(f"== {NATIVE_BENCH}: skipped, not built with this installation", flush=True)
    scripts = [s for s in BENCHMARKS if s in chosen]
    if scripts:
        folder = args.folder or benchmarks_dir()
        if args.folder is not None and not (folder / "common.py").is_file():
            raise SystemExit(f"convkit bench: --from {str(folder)!r} is not convkit's benchmarks/ folder")
        if folder is None:
            raise SystemExit("convkit bench runs the scripts in the repository's benchmarks/ folder: run it from a "
                             "clone of convkit (the folder is not part of the installed package), or use --native")
        commands += [(s, [sys.executable, str(folder / s), *passed_on]) for s in scripts if (folder / s).is_file()]
    status = 0
    for name, command in commands:
        print(f"== {name}", flush=True)
        status = max(status, subprocess.call(command))
    return status


# ---- parser -----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convkit", description="Train, evaluate and inspect convolutional networks.")
    parser.add_argument("--version", action="version", version=f"convkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    data_help = ("dataset: digits (bundled, the default), or mnist DIR, fashion-mnist DIR, cifar10 DIR, folder DIR "
                 "(one sub-folder of images per class)")
    train = commands.add_parser("train", help="train a zoo model (default: LeNet-5 on the bundled digits)")
    train.add_argument("--model", default="lenet5_modern", help="zoo model name (convkit summary --list)")
    train.add_argument("--model-option", type=_parse_option, action="append", default=[], metavar="KEY=VALUE",
                       help="an option of the model function, e.g. alpha=0.25 (repeatable)")
    train.add_argument("--data", nargs="+", default=["digits"], metavar="NAME [DIR]", help=data_help)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=0.02)
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--nesterov", action="store_true")
    train.add_argument("--weight-decay", type=float, default=1e-3, help="L2 on kernels (not on biases and norms)")
    train.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    train.add_argument("--augment", action="store_true", help="random shifts/rotations (digits) or flips/crops")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=0, help="OpenMP threads (default: all cores)")
    train.add_argument("--out", help="run folder (default: a new runs/MODEL-DATA[-n])")
    train.add_argument("--resume", metavar="CKPT", help="continue a run from its last.ckpt")
    train.add_argument("--quiet", dest="verbose", action="store_false", help="one line per epoch, no summary")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="accuracy of a checkpoint on a dataset's test split")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--data", nargs="+", default=["digits"], metavar="NAME [DIR]", help=data_help)
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--seed", type=int, default=0, help="the digits split's seed (as in training)")
    evaluate.set_defaults(run=cmd_evaluate)

    summary = commands.add_parser("summary", help="Keras-style summary of a zoo model: shapes, params, FLOPs, memory")
    summary.add_argument("model", nargs="?", default="lenet5_modern")
    summary.add_argument("--input-shape", type=_parse_shape, default=(28, 28, 1), help="e.g. 224,224,3")
    summary.add_argument("--classes", type=int, default=10)
    summary.add_argument("--model-option", type=_parse_option, action="append", default=[], metavar="KEY=VALUE")
    summary.add_argument("--list", action="store_true", help="list the zoo's models and exit")
    summary.set_defaults(run=cmd_summary)

    bench = commands.add_parser("bench", help="run the benchmark suite: the C++ executable, then the scripts of "
                                              "benchmarks/ (from a clone of the repository)")
    bench.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    bench.add_argument("--native", action="store_true",
                       help=f"run only the installed C++ executable {NATIVE_BENCH} (no clone needed)")
    bench.add_argument("--from", dest="folder", type=Path, metavar="DIR",
                       help="the benchmarks/ folder (default: next to the package, or in the current directory)")
    bench.add_argument("--only", action="append", choices=[NATIVE_BENCH, *BENCHMARKS],
                       help="run only this one (repeatable)")
    bench.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed on to every benchmark")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    # `convkit bench` passes the options it does not know on to the benchmarks (argparse's REMAINDER alone
    # would only catch them after a first positional argument).
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.extra = [*unknown, *args.extra]
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "summary" and args.list:
        from . import models
        print("\n".join(models.available()))
        return 0
    for name in ("epochs", "batch_size", "threads"):
        if getattr(args, name, 1) is not None and getattr(args, name, 1) < (0 if name == "threads" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= {0 if name == 'threads' else 1}, "
                         f"got {getattr(args, name)}")
    return args.run(args)
