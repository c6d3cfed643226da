"""Making the replicas of a model agree: parameters and optimizer state from rank 0, sums of numbers."""
from __future__ import annotations

from typing import Any, List

import numpy as np

from . import runtime


def _signature(network) -> List[tuple]:
    return [(p.name, p.shape, p.value.dtype.str) for p in network.parameters()]


def check_same_network(network, comm: Any = None) -> None:
    """Raises ValueError on every rank (never on some only, which would leave the others waiting) unless all
    ranks hold parameters of the same names, shapes and dtypes, in the same order. No-op without MPI."""
    comm = comm if comm is not None else runtime.comm()
    if comm is None:
        return
    signatures = comm.allgather(_signature(network))
    for other, signature in enumerate(signatures):
        if signature != signatures[0]:
            differing = next((a, b) for a, b in zip(signatures[0] + [None], signature + [None]) if a != b)
            raise ValueError(f"the ranks train different networks: rank 0 has parameter {differing[0]} where rank "
                             f"{other} has {differing[1]} (name, shape, dtype); build the same model on every rank")


def broadcast_parameters(network, comm: Any = None, trainable: bool = True) -> None:
    """Copies rank 0's parameters and state (BatchNorm's running statistics) into every rank's network, in
    place. trainable=False copies only the non-trainable ones (state, frozen weights). No-op without MPI."""
    comm = comm if comm is not None else runtime.comm()
    if comm is None or comm.Get_size() == 1:
        return
    for p in network.parameters():
        if trainable or not p.trainable:
            comm.Bcast(p.value, root=0)


def broadcast_optimizer_state(optimizer, comm: Any = None) -> None:
    """Gives every rank rank 0's optimizer state (step counts, momentum buffers, moments, learning rates), so
    that a resumed run continues from one state. The parameters are matched by name. No-op without MPI."""
    comm = comm if comm is not None else runtime.comm()
    if comm is None or comm.Get_size() == 1:
        return
    state = comm.bcast(optimizer.state_dict() if comm.Get_rank() == 0 else None, root=0)
    if comm.Get_rank() != 0:
        optimizer.load_state_dict(state)


def broadcast_object(value: Any, comm: Any = None) -> Any:
    """Rank 0's value (any picklable object) on every rank; the value itself without MPI."""
    comm = comm if comm is not None else runtime.comm()
    return comm.bcast(value, root=0) if comm is not None and comm.Get_size() > 1 else value


def sum_over_ranks(values, comm: Any = None) -> np.ndarray:
    """The elementwise sum over the ranks of a vector of numbers (float64), the same on every rank."""
    comm = comm if comm is not None else runtime.comm()
    values = np.array(values, dtype=np.float64)
    if comm is not None and comm.Get_size() > 1:
        MPI = runtime.mpi_module()
        comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
    return values
