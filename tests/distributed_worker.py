"""The programs tests/test_distributed.py runs under `mpiexec -n 2` (and, for the references, in one process).

    python tests/distributed_worker.py SCENARIO OUT_DIR

fit:       data-parallel fit of a small float64 network (with SyncBatchNormalization), SGD without and with
           momentum, a rank-0-only checkpoint and CSV log; each rank saves its final weights and logs, and
           the indices its DistributedSampler hands it.
syncbn:    SyncBatchNormalization forward and backward on each rank's half of one batch.
fail:      rank 1 raises while rank 0 waits in a collective operation.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

import convkit
from convkit import distributed
from convkit.callbacks import Callback, CSVLogger, ModelCheckpoint
from convkit.layers import Conv2D, Dense, Flatten, MaxPooling2D, ReLU, SyncBatchNormalization
from convkit.optim import SGD

SAMPLES, BATCH, EPOCHS, SEED = 48, 12, 2, 3  # per-rank batch BATCH // world size: 8 steps
SAMPLER_SAMPLES = 47                         # not divisible by 2: one padded index per epoch


def fit_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES + 10, 6, 6, 2))
    y = rng.integers(0, 3, SAMPLES + 10)
    return (x[:SAMPLES], y[:SAMPLES]), (x[SAMPLES:], y[SAMPLES:])


def fit_model(momentum: float):
    """The same float64 network in every process (rank 0's initial weights win under MPI anyway)."""
    convkit.random.seed(1)
    model = convkit.Sequential([Conv2D(4, 3, padding="same", dtype="float64", input_shape=(6, 6, 2)),
                                SyncBatchNormalization(dtype="float64"), ReLU(), MaxPooling2D(2), Flatten(),
                                Dense(3, dtype="float64")])
    model.compile(SGD(lr=0.1, momentum=momentum, nesterov=momentum > 0), "softmax_cross_entropy", ["accuracy"])
    return model


def train(momentum: float, batch_size: int, callbacks=(), distributed_fit=None):
    """(model, History) after EPOCHS epochs with validation."""
    (x, y), validation = fit_data()
    model = fit_model(momentum)
    history = model.fit(x, y, batch_size=batch_size, epochs=EPOCHS, validation_data=validation, seed=SEED,
                        verbose=0, callbacks=list(callbacks), distributed=distributed_fit)
    return model, history


class CheckpointSeenByEveryRank(Callback):
    """Records, on every rank, whether rank 0's checkpoint of the epoch exists once fit has moved on."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            self.seen.append(os.path.exists(self.pattern.format(epoch=epoch)))

    def on_train_end(self, logs=None):
        self.seen.append(os.path.exists(self.pattern.format(epoch=EPOCHS)))


def scenario_fit(out: str) -> None:
    rank, world_size = distributed.init()
    result = {}
    for momentum in (0.0, 0.9):
        pattern = os.path.join(out, f"m{momentum}-written-on-rank{rank}-epoch{{epoch}}.ckpt")
        seen = CheckpointSeenByEveryRank(os.path.join(out, f"m{momentum}-written-on-rank0-epoch{{epoch}}.ckpt"))
        model, history = train(momentum, BATCH // world_size,
                               [ModelCheckpoint(pattern, monitor="loss"),
                                CSVLogger(os.path.join(out, f"m{momentum}-log-written-on-rank{rank}.csv")), seen])
        np.savez(os.path.join(out, f"weights-m{momentum}-rank{rank}.npz"), *(p.value for p in model.parameters()))
        result[f"m{momentum}"] = {"history": history.history, "seen": seen.seen}
    sampler = distributed.DistributedSampler(SAMPLER_SAMPLES, world_size, rank, seed=SEED)
    result["sampler"] = [sampler.indices(epoch).tolist() for epoch in range(3)]
    with open(os.path.join(out, f"result-rank{rank}.json"), "w") as file:
        json.dump(result, file)


def syncbn_data():
    rng = np.random.default_rng(5)
    return rng.standard_normal((8, 3, 3, 4)) * 3 + 1, rng.standard_normal((8, 3, 3, 4))


def syncbn_affine():
    return np.array([0.5, 1.5, -1.0, 2.0]), np.array([0.1, -0.2, 0.3, 0.0])


def scenario_syncbn(out: str) -> None:
    rank, world_size = distributed.init()
    x, dy = syncbn_data()
    share = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
    layer = SyncBatchNormalization(dtype="float64")
    layer.build_once(x.shape[1:])
    layer.gamma.assign(syncbn_affine()[0])
    layer.beta.assign(syncbn_affine()[1])
    y = layer.forward(x[share], training=True)
    dx = layer.backward(dy[share])
    np.savez(os.path.join(out, f"syncbn-rank{rank}.npz"), y=y, dx=dx, dgamma=layer.gamma.grad,
             dbeta=layer.beta.grad, gamma=layer.gamma.value, beta=layer.beta.value,
             moving_mean=layer.moving_mean.value, moving_variance=layer.moving_variance.value)


def scenario_fail(out: str) -> None:
    rank, _ = distributed.init()
    if rank == 1:
        raise ValueError("rank 1 failed on purpose")
    distributed.sum_over_ranks([1.0])  # rank 0 waits here for a rank that never comes


if __name__ == "__main__":
    {"fit": scenario_fit, "syncbn": scenario_syncbn, "fail": scenario_fail}[sys.argv[1]](sys.argv[2])
