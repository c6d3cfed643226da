"""The cap on scratch memory one call of the compiled core may hold at once (a process-wide setting).

Scratch means buffers sized by the problem that the caller never sees: im2col column tiles, GEMM packing
panels, the transposed copies of w that conv backward makes, per-block partial sums. What one op call holds
at the same time is summed, over all its buffers and all the threads working for it; outputs are not
counted. Drivers tile their work to fit what the call's other buffers leave; a problem whose smallest
tiling is over the limit raises MemoryError stating the bytes needed and the limit, before anything is
allocated.
"""
from __future__ import annotations

import numbers

from . import _C

DEFAULT_WORKSPACE_LIMIT: int = _C.default_workspace_limit  # 1 GiB
INT64_MAX = 2**63 - 1


def set_workspace_limit(bytes: int) -> None:  # noqa: A002 - the unit is the clearest name
    """Allow at most `bytes` (an int >= 0) of scratch memory held at once by one call of a convkit kernel."""
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
