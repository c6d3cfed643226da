"""convkit: convolutional networks on a fast C++/OpenMP core, NumPy in and NumPy out."""
import os as _os

from . import _C, initializers, layers, losses, metrics, ops, registry, testing
from .network import Input, Model, Sequential
from .parameter import Parameter
from ._version import __version__
from .saving import load_model
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

if _os.environ.get("CONVKIT_KERNEL"):
    from .runtime import apply_kernel_override as _apply_kernel_override

    _apply_kernel_override(_os.environ["CONVKIT_KERNEL"])

__all__ = [
    "Input",
    "KernelInfo",
    "Model",
    "Parameter",
    "Sequential",
    "__version__",
    "config",
    "get_num_threads",
    "initializers",
    "kernels",
    "losses",
    "metrics",
    "layers",
    "load_model",
    "ops",
    "registry",
    "select_kernel",
    "set_num_threads",
    "show_config",
    "testing",
    "use_kernel",
]
