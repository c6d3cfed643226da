"""convkit: convolutional networks on a fast C++/OpenMP core, NumPy in and NumPy out."""
import os as _os

from . import (
    _C,
    anomaly,
    callbacks,
    cuda,
    data,
    distributed,
    export,
    initializers,
    interop,
    layers,
    losses,
    metrics,
    models,
    ops,
    optim,
    random,
    registry,
    schedules,
    testing,
)
from ._version import __version__
from .anomaly import AnomalyError, detect_anomaly, set_anomaly_detection
from .cuda import Tensor, from_dlpack, to_device
from .network import Input, Model, Sequential
from .parameter import Parameter
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
from .saving import load_model
from .training import History, TrainingMixin, ensemble
from .workspace import get_workspace_limit, set_workspace_limit

if _os.environ.get("CONVKIT_KERNEL"):
    from .runtime import apply_kernel_override as _apply_kernel_override

    _apply_kernel_override(_os.environ["CONVKIT_KERNEL"])

__all__ = [
    "AnomalyError",
    "History",
    "Input",
    "KernelInfo",
    "Model",
    "Parameter",
    "Sequential",
    "Tensor",
    "TrainingMixin",
    "__version__",
    "anomaly",
    "callbacks",
    "cuda",
    "config",
    "data",
    "detect_anomaly",
    "distributed",
    "ensemble",
    "export",
    "from_dlpack",
    "get_num_threads",
    "initializers",
    "interop",
    "get_workspace_limit",
    "kernels",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "ops",
    "optim",
    "random",
    "registry",
    "schedules",
    "select_kernel",
    "set_anomaly_detection",
    "set_num_threads",
    "set_workspace_limit",
    "show_config",
    "testing",
    "to_device",
    "use_kernel",
]
