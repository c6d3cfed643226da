"""The process group: which MPI rank this process is, how many there are, and what happens when one fails.

MPI is reached through mpi4py (an optional extra: `pip install "convkit[mpi]"`), and only when the process
was started by an MPI launcher (mpiexec / mpirun / srun with PMIx): the launcher's environment variables
say so, and importing mpi4py is then safe. A plain `python script.py` never imports mpi4py (which costs
about a second and may start a singleton MPI runtime): it is rank 0 of a world of size 1, and the same code
runs unchanged.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Optional

# Set by the launchers of Open MPI (OMPI_*), MPICH / Intel MPI (PMI_*), and any PMIx-based one (PMIX_RANK).
_LAUNCHER_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS")
_LAUNCHER_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")

_comm: Any = None          # mpi4py's COMM_WORLD once init() joined MPI, else None
_previous_excepthook = None


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process (its environment variables are set)."""
    return any(name in os.environ for name in (*_LAUNCHER_SIZE_VARIABLES, *_LAUNCHER_RANK_VARIABLES))


def _launcher_world_size() -> Optional[int]:
    """The world size the launcher announces (SLURM_NTASKS for srun's PMIx, which names no size), or None."""
    for name in (*_LAUNCHER_SIZE_VARIABLES, "SLURM_NTASKS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


def init(abort_on_error: bool = True, use_mpi: Optional[bool] = None) -> tuple[int, int]:
    """Joins the MPI world and returns (rank, world_size).

    use_mpi=None (the default): MPI when an MPI launcher (mpiexec, mpirun, srun) started this process, else
    rank 0 of 1 without importing mpi4py. use_mpi=True: import mpi4py in any case (for a launcher whose
    variables are not recognised; a process started alone is then MPI's world of one). Without mpi4py,
    ImportError is raised when use_mpi=True or the launcher announces more than one process (K processes
    silently training alone would each write the same run); a launcher's single process runs alone.
    Calling init again returns the same answer.

    abort_on_error (with more than one rank): an uncaught exception prints its traceback, prefixed with the
    rank, then calls MPI_Abort, which ends every rank: the others would otherwise wait forever in their next
    collective operation for the rank that died.
    """
    global _comm, _previous_excepthook
    if _comm is None and (use_mpi or launched_by_mpi()):
        try:
            from mpi4py import MPI
        except ImportError as error:
            size = _launcher_world_size()
            if use_mpi or (size or 1) > 1:
                raise ImportError(f"MPI was asked for (launcher world size: {size or 'unknown'}) but mpi4py is not "
                                  "installed: pip install \"convkit[mpi]\" (or pip install mpi4py against your "
                                  "MPI)") from error
        else:
            _comm = MPI.COMM_WORLD
    if abort_on_error and world_size() > 1 and _previous_excepthook is None:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_all_ranks
    return rank(), world_size()


def _abort_all_ranks(kind, value, tb) -> None:
    """sys.excepthook under MPI: the traceback (each line prefixed with the rank), then MPI_Abort."""
    lines = "".join(traceback.format_exception(kind, value, tb)).rstrip("\n").splitlines()
    message = "\n".join(f"[rank {rank()}] {line}" for line in lines)
    sys.stderr.write(f"{message}\n[rank {rank()}] convkit.distributed: aborting all {world_size()} ranks\n")
    sys.stderr.flush()
    _comm.Abort(1)


def mpi_module() -> Any:
    """mpi4py.MPI (its constants: IN_PLACE, SUM), imported when first needed."""
    from mpi4py import MPI

    return MPI


def comm() -> Any:
    """mpi4py's COMM_WORLD (after init()); None in a single process without MPI."""
    return _comm


def rank() -> int:
    """This process's rank in [0, world_size()); 0 without MPI."""
    return _comm.Get_rank() if _comm is not None else 0


def world_size() -> int:
    """The number of processes training together; 1 without MPI."""
    return _comm.Get_size() if _comm is not None else 1


def local_size() -> int:
    """The number of ranks on this machine (sharing its cores); 1 without MPI."""
    if _comm is None:
        return 1
    node = _comm.Split_type(mpi_module().COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def is_distributed() -> bool:
    """Whether init() joined an MPI world of more than one process."""
    return world_size() > 1


def barrier() -> None:
    """Waits until every rank arrives (nothing to wait for in a single process)."""
    if _comm is not None:
        _comm.Barrier()
