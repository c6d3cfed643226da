"""Which samples each rank trains on in each epoch."""
from __future__ import annotations

import numpy as np

from .._validate import check_bool, check_positive_int


def _check_index(value, name: str, upper: float = np.inf) -> int:
    """An int in [0, upper)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value < upper:
        bound = f"in [0, {upper})" if upper < np.inf else ">= 0"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return int(value)


class DistributedSampler:
    """Splits the indices of `num_samples` samples among `world_size` ranks, reshuffled every epoch.

    Epoch e's order is the permutation of numpy.random.default_rng([seed, e]) (the one `fit` uses in a single
    process; identity without shuffle). Rank r takes every world_size-th index of it from position r, so that
    per-rank batch b of K ranks holds together exactly the samples of batch b of one process with batch size
    K * (per-rank batch size): data-parallel training follows the single-process run.

    Padding (the default): when world_size does not divide num_samples, the order is extended with its own
    first (K - N mod K) indices, so every rank gets ceil(N / K) samples. Every sample is then used once per
    epoch, and those few (at most K - 1) twice. Equal shares matter: each batch is a collective operation,
    and a rank with one batch fewer would leave the others waiting. drop_last=True instead cuts the order to
    a multiple of K: floor(N / K) samples each, the last N mod K of the order unused in that epoch.

        sampler = DistributedSampler(len(x), world_size(), rank(), seed=0)
        for epoch in range(epochs):
            index = sampler.indices(epoch)          # this rank's samples, in order
    """

    def __init__(self, num_samples: int, world_size: int, rank: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False) -> None:
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.world_size = check_positive_int(world_size, "world_size")
        self.rank = _check_index(rank, "rank", self.world_size)
        self.seed = _check_index(seed, "seed")
        self.shuffle = check_bool(shuffle, "shuffle")
        self.drop_last = check_bool(drop_last, "drop_last")
        if self.drop_last and self.num_samples < self.world_size:
            raise ValueError(f"drop_last with {self.num_samples} samples leaves nothing for {self.world_size} ranks")

    def __len__(self) -> int:
        """Samples per rank and epoch (the same on every rank)."""
        if self.drop_last:
            return self.num_samples // self.world_size
        return -(-self.num_samples // self.world_size)

    def order(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s order of all the samples, before sharing out (int64, length num_samples)."""
        epoch = _check_index(epoch, "epoch")
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples).astype(np.int64)

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's samples in epoch `epoch`, in the order to train on them (int64, length len(self))."""
        order = self.order(epoch)
        total = len(self) * self.world_size
        if total > len(order):  # padding; np.resize repeats from the start (N < K: several rounds)
            order = np.resize(order, total)
        return order[self.rank:total:self.world_size]
