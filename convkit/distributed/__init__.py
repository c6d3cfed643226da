"""Data-parallel training over MPI (through mpi4py): several processes, on one machine or many, train one
model together, each on its share of every batch. See README "Distributed training over MPI".

    mpiexec -n 4 convkit train ...                       # the command, unchanged
    mpiexec -n 4 python train.py                         # fit() goes data-parallel by itself under mpiexec

    from convkit import distributed
    rank, world_size = distributed.init()                # (0, 1) without mpiexec: the code runs unchanged

fit(distributed=None) detects the launcher; the pieces it uses are public for hand-written loops:
DistributedSampler (each rank's samples per epoch), broadcast_parameters / broadcast_optimizer_state (rank
0's replica to all), GradientAverager (bucketed all-reduce of the gradients, overlapped with backward), and
convkit.layers.SyncBatchNormalization.
"""
from .collectives import broadcast_object, broadcast_optimizer_state, broadcast_parameters, check_same_network, sum_over_ranks
from .gradients import DEFAULT_BUCKET_BYTES, GradientAverager, plan_buckets
from .runtime import barrier, comm, init, is_distributed, launched_by_mpi, local_size, rank, world_size
from .sampler import DistributedSampler

__all__ = [
    "DEFAULT_BUCKET_BYTES", "DistributedSampler", "GradientAverager", "barrier", "broadcast_object",
    "broadcast_optimizer_state", "broadcast_parameters", "check_same_network", "comm", "init", "is_distributed",
    "launched_by_mpi", "local_size", "plan_buckets", "rank", "sum_over_ranks", "world_size",
]
