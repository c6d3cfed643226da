"""What `fit` does differently when several processes train one model together (data parallelism).

Every rank holds a full replica. At the start, rank 0's parameters, optimizer state and shuffling seed go to
every rank. Each epoch, each rank trains on its share of the samples (DistributedSampler), with the given
batch size per rank; after each backward pass the gradients are averaged over the ranks (GradientAverager),
so every replica takes the same step. The batch's loss and metrics are averaged over the ranks too (weighted
by the ranks' sample counts), so that the progress display, the callbacks and the History see the numbers
of the whole batch, identical on every rank, and take the same decisions (early stopping, the learning
rate). At the end of each epoch rank 0's non-trainable state (BatchNorm's running statistics, which each
rank estimated from its own batches) is copied to every rank, before validation and checkpoints; the
validation samples are shared out among the ranks and their sums added up.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import collectives, runtime
from .gradients import GradientAverager
from .sampler import DistributedSampler


class DataParallelFit:
    """The distributed side of one `fit` call (see the module docstring); made by `for_fit`."""

    def __init__(self, model, comm: Any) -> None:
        self.model = model
        self.comm = comm
        self.rank = comm.Get_rank()
        self.world_size = comm.Get_size()
        self.averager: Optional[GradientAverager] = None

    @classmethod
    def for_fit(cls, model, distributed: Optional[bool]) -> Optional["DataParallelFit"]:
        """distributed=None (automatic): data-parallel when an MPI launcher started the process with more than
        one rank; True: the same, importing mpi4py even when no launcher variable is recognised; False:
        never. None when the world has one process: fit then runs exactly as it always does."""
        if distributed is False or (distributed is None and not runtime.launched_by_mpi()):
            return None
        runtime.init(use_mpi=distributed)
        return cls(model, runtime.comm()) if runtime.is_distributed() else None

    def begin(self, seed: int) -> int:
        """Makes the replicas equal, attaches the gradient averaging; returns rank 0's seed (a seed drawn at
        random differs on each rank, and every rank must shuffle alike)."""
        collectives.check_same_network(self.model, self.comm)
        collectives.broadcast_parameters(self.model, self.comm)
        collectives.broadcast_optimizer_state(self.model.optimizer, self.comm)
        self.averager = GradientAverager(self.model, self.comm)
        self.model._gradient_averager = self.averager
        return self.comm.bcast(seed, root=0)

    def end(self) -> None:
        """Detaches the gradient averaging (not a collective: safe on the way out of an exception)."""
        if self.averager is not None:
            self.averager.close()
            self.model._gradient_averager = None

    def sampler(self, num_samples: int, seed: int, shuffle: bool) -> DistributedSampler:
        return DistributedSampler(num_samples, self.world_size, self.rank, seed=seed, shuffle=shuffle)

    def reduce_batch(self, logs: Dict[str, float], count: int, stop: bool) -> Tuple[Dict[str, float], int, bool]:
        """The batch's logs averaged over the ranks (weighted by their sample counts), the total count, and
        whether any rank asked to stop (Ctrl-C reaches the ranks at different batches)."""
        sums = collectives.sum_over_ranks([*(v * count for v in logs.values()), count, float(stop)], self.comm)
        total = int(sums[-2])
        return {key: float(s / total) for key, s in zip(logs, sums)}, total, bool(sums[-1])

    def any_rank(self, *flags: bool) -> Tuple[bool, ...]:
        """Each flag, True if it is True on any rank (a stop asked for on one rank stops them all)."""
        return tuple(bool(total) for total in collectives.sum_over_ranks([float(f) for f in flags], self.comm))

    def end_epoch(self) -> None:
        """Rank 0's non-trainable state (running statistics) to every rank."""
        collectives.broadcast_parameters(self.model, self.comm, trainable=False)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, float]:
        """model.evaluate(x, y) with the samples shared out among the ranks in contiguous blocks."""
        start, stop = (len(x) * r // self.world_size for r in (self.rank, self.rank + 1))
        keys = ["loss", *(name for name, _ in self.model.compiled_metrics)]
        totals = self.model._evaluation_totals(x[start:stop], y[start:stop], batch_size) if stop > start else {}
        sums = collectives.sum_over_ranks([*(totals.get(k, 0.0) for k in keys), stop - start], self.comm)
        return {key: float(s / sums[-1]) for key, s in zip(keys, sums)}
