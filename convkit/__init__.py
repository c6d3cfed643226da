"""convkit: convolutional networks on a fast C++/OpenMP core, NumPy in and NumPy out."""
import os as _os

from . import _C, ops
from . import losses, metrics
from ._version import __version__
from .runtime import (
    KernelInfo,
    config,
    get_num_threads,
    kernels,
    select_kernel,
    set_num_threads,
    show_config,
    use_kernel,
)
from .workspace import get_workspace_limit, set_workspace_limit

if _os.environ.get("CONVKIT_KERNEL"):
    from .runtime import apply_kernel_override as _apply_kernel_override

    _apply_kernel_override(_os.environ["CONVKIT_KERNEL"])

__all__ = [
    "KernelInfo",
    "__version__",
    "config",
    "get_num_threads",
    "get_workspace_limit",
    "kernels",
    "losses",
    "metrics",
    "ops",
    "select_kernel",
    "set_num_threads",
    "set_workspace_limit",
    "show_config",
    "use_kernel",
]
