"""The optional CUDA backend: device arrays (Tensor) and the state of the GPU.

    x = convkit.to_device(np.ones((8, 32, 32, 3), np.float32))   # a Tensor on the GPU
    y = convkit.ops.conv2d(x, w, b, padding="same")                # ops given Tensors run on the GPU
    y.numpy()                                                      # back to the host

Built only when nvcc and cuBLAS were found at install (see the README's "CUDA backend (optional)");
`import convkit` never needs CUDA. Device calls without a usable GPU raise CudaUnavailableError saying why.
"""
from __future__ import annotations

from ._backend import CudaUnavailableError, device_count, is_built
from ._backend import module as _module
from .tensor import Tensor, from_dlpack, to_device


def is_available() -> bool:
    """True when the CUDA backend is built and a GPU is visible."""
    return device_count() > 0


def synchronize() -> None:
    """Wait until every queued GPU operation has finished (for timing; .numpy() waits by itself)."""
    _module().synchronize()


def set_allow_tf32(allow: bool) -> None:
    """Let float32 GEMMs and convolutions use TF32 tensor cores (10-bit mantissa operands; off by default,
    as in PyTorch). Process-wide."""
    if not isinstance(allow, bool):
        raise TypeError(f"allow must be True or False, got {allow!r}")
    _module().set_allow_tf32(allow)


def allow_tf32() -> bool:
    """Whether float32 GEMMs may use TF32 (set_allow_tf32)."""
    return bool(_module().allow_tf32())


def device_description() -> str:
    """The GPU's name and compute capability, e.g. 'NVIDIA H100 80GB HBM3 (sm_90)'."""
    return _module().device_description()


def sgd_step(params, grads, velocities, first_step, *, lr: float, momentum: float, dampening: float = 0.0,
             weight_decay: float = 0.0, nesterov: bool = False) -> None:
    """The fused SGD-momentum update of convkit.optim.SGD on Tensors, in place (velocities: [] when
    momentum == 0; first_step[i]: the velocity holds nothing yet). Same arithmetic as the host update."""
    from ._ops import sgd_step as device_sgd_step

    device_sgd_step(list(params), list(grads), list(velocities), list(first_step), lr=float(lr),
                    momentum=float(momentum), dampening=float(dampening), weight_decay=float(weight_decay),
                    nesterov=bool(nesterov))


__all__ = ["CudaUnavailableError", "Tensor", "allow_tf32", "device_count", "device_description", "from_dlpack",
           "is_available", "is_built", "set_allow_tf32", "sgd_step", "synchronize", "to_device"]
