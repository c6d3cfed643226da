"""The cap on scratch memory one call of the compiled core may allocate (process-wide, all threads).

Scratch means buffers sized by the problem that the caller never sees: im2col column tiles, GEMM packing
panels, per-block partial sums. Outputs are not counted. Drivers tile their work to fit the limit; a
problem whose smallest tile is over it raises MemoryError stating the bytes needed and the limit, before
anything is allocated.
"""
from __future__ import annotations

import numbers

from . import _C

DEFAULT_WORKSPACE_LIMIT: int = _C.default_workspace_limit  # 1 GiB
INT64_MAX = 2**63 - 1


def set_workspace_limit(bytes: int) -> None:  # noqa: A002 - the unit is the clearest name
    """Allow at most `bytes` (an int >= 0) of scratch memory per call of a convkit kernel."""
    if isinstance(bytes, bool) or not isinstance(bytes, numbers.Integral):
        raise TypeError(f"bytes must be an int, got {bytes!r}")
    if not 0 <= bytes <= INT64_MAX:
        raise ValueError(f"bytes must be in [0, 2**63 - 1], got {bytes!r}")
    _C.set_workspace_limit(int(bytes))


def get_workspace_limit() -> int:
    """The scratch memory limit in bytes (default 1 GiB)."""
    return _C.workspace_limit()


def check_workspace(needed: int, what: str) -> None:
    """Raise MemoryError naming `what` when `needed` bytes of scratch exceed the limit."""
    limit = get_workspace_limit()
    if needed > limit:
        raise MemoryError(
            f"{what} needs {needed} bytes of workspace, over the limit of {limit} bytes "
            f"(convkit.set_workspace_limit)"
        )
