"""Loading convkit._cuda and the checks every device call makes first: built, loadable, not forked, a GPU.

convkit._cuda is loaded on first use, not at `import convkit`: it links cuBLAS, whose loading costs about
0.4 s that CPU-only work should not pay.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Optional


class CudaUnavailableError(RuntimeError):
    """CUDA was asked for, but this build or this machine cannot run it (the message says which)."""


NOT_BUILT = ("convkit was built without its CUDA backend (no convkit._cuda): rebuild with nvcc and cuBLAS installed "
             "(CONVKIT_CUDA=1 pip install . makes a missing toolchain an error)")

_state = {"loaded": False, "module": None, "error": None, "used": False, "forked_after_use": False}


def _load() -> Optional[ModuleType]:
    """convkit._cuda, or None (the reason in _state["error"]); tried once."""
    if not _state["loaded"]:
        try:
            _state["module"] = importlib.import_module("convkit._cuda")
        except ModuleNotFoundError as err:
            if err.name != "convkit._cuda":
                raise
            _state["error"] = NOT_BUILT
        except ImportError as err:  # built, but a shared library (libcublas) is missing
            _state["error"] = f"convkit._cuda is built but cannot be loaded: {err}"
        _state["loaded"] = True
    return _state["module"]


def _after_fork_in_child() -> None:
    # A CUDA context does not survive fork(): the child must not touch the parent's device memory.
    if _state["used"]:
        _state["forked_after_use"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def is_built() -> bool:
    """True when convkit._cuda was built and loads (it may still find no GPU)."""
    return _load() is not None


def load_error() -> Optional[str]:
    """Why convkit._cuda cannot be used (not built, or a library missing), or None."""
    _load()
    return _state["error"]


def runtime_version() -> Optional[str]:
    """The CUDA runtime convkit._cuda was built against ("13.0"), or None when it is not built."""
    module = _load()
    return module.runtime_version() if module is not None else None


def device_count() -> int:
    """GPUs visible to this process; 0 when CUDA is not built, there is no driver or no GPU."""
    module = _load()
    return module.device_count() if module is not None else 0


def module() -> ModuleType:
    """convkit._cuda, ready for a device call; raises CudaUnavailableError or RuntimeError saying why not."""
    cuda = _load()
    if cuda is None:
        raise CudaUnavailableError(_state["error"])
    if _state["forked_after_use"]:
        raise RuntimeError("this process was forked after it used CUDA, and a CUDA context does not survive "
                           "fork(): use the 'spawn' start method (multiprocessing.get_context('spawn'))")
    if not _state["used"]:
        if cuda.device_count() == 0:
            raise CudaUnavailableError("convkit's CUDA backend is built, but no CUDA device is visible (no GPU, no "
                                       "driver, or CUDA_VISIBLE_DEVICES hides them)")
        _state["used"] = True
    return cuda
