"""Threads, kernel selection and build configuration of the compiled core."""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from typing import Iterator, TextIO

from . import _C
from ._validate import check_positive_int
from ._version import __version__


def set_num_threads(n: int) -> None:
    """Use `n` threads in every convkit kernel (process-wide, all Python threads).

    In a child process forked after convkit ran multi-threaded, kernels stay single-threaded (OpenMP's
    thread pool does not survive fork); use the 'spawn' start method for parallel worker processes.
    """
    n = check_positive_int(n, "n")
    if n > 1 and _C.single_threaded_after_fork():
        warnings.warn(
            f"set_num_threads({n}) in a process forked after convkit ran multi-threaded: kernels stay "
            "single-threaded here (OpenMP's thread pool does not survive fork); use the 'spawn' start method",
            RuntimeWarning,
            stacklevel=2,
        )
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads convkit's kernels use (1 when built without OpenMP)."""
    return _C.get_num_threads()


@dataclass(frozen=True)
class KernelInfo:
    """One kernel of the compiled core. `name` reads dtype-family-tile-isa, e.g. f32-gemm-6x16-avx2."""

    name: str
    family: str
    dtype: str
    isa: str
    available: bool  # this CPU can run it
    selected: bool  # the ops use it now


def kernels() -> list[KernelInfo]:
    """Every kernel built into this binary, best first within each family and dtype."""
    return [KernelInfo(**k) for k in _C.list_kernels()]


def select_kernel(name: str) -> None:
    """Make kernel `name` the one its family uses ('ref' selects every reference kernel).

    Raises ValueError for an unknown name or a kernel this CPU cannot run.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a kernel name (str), got {name!r}")
    _C.select_kernel(name)


@contextlib.contextmanager
def use_kernel(name: str) -> Iterator[None]:
    """Within the block, run `name` (see select_kernel); the previous selection is restored after.

    The selection is process-wide: other threads calling convkit meanwhile use it too.
    """
    before = [k.name for k in kernels() if k.selected]
    select_kernel(name)
    try:
        yield
    finally:
        for previous in before:
            _C.select_kernel(previous)


def apply_kernel_override(value: str) -> None:
    """CONVKIT_KERNEL: 'ref' or a comma-separated list of kernel names to force, for debugging."""
    for token in filter(None, (t.strip() for t in value.split(","))):
        try:
            _C.select_kernel(token)
        except ValueError as err:
            raise ValueError(f"CONVKIT_KERNEL={value!r}: {err}") from None


def config() -> dict:
    """The build and runtime configuration as a dict (what show_config prints)."""
    selected = {f"{k.family}/{k.dtype}": k.name for k in kernels() if k.selected}
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "compiler": _C.compiler,
        "openmp": bool(_C.openmp),
        "threads": get_num_threads(),
        "hardware_threads": _C.hardware_threads(),
        "cpu_features": _C.cpu_features(),
        "kernels": selected,
        "kernel_override": os.environ.get("CONVKIT_KERNEL", ""),
        "cuda": cuda_config(),
    }


def cuda_config() -> dict:
    """The CUDA backend: built (convkit._cuda loads), the runtime it was built against, the GPUs visible, and
    why it is not usable when it is not."""
    from .cuda import _backend

    return {"built": _backend.is_built(), "runtime": _backend.runtime_version(), "devices": _backend.device_count(),
            "error": _backend.load_error()}


def show_config(file: TextIO | None = None) -> None:
    """Print the version, compiler, OpenMP, threads, CPU features and the kernel chosen per op family."""
    cfg = config()
    lines = [f"convkit {cfg['version']} (Python {cfg['python']}, {cfg['platform']})"]
    lines.append(f"  compiler:      {cfg['compiler']}")
    lines.append(f"  OpenMP:        {'on' if cfg['openmp'] else 'off'}")
    lines.append(f"  threads:       {cfg['threads']} of {cfg['hardware_threads']} hardware threads")
    lines.append(f"  CPU features:  {cfg['cpu_features']}")
    cuda = cfg["cuda"]
    lines.append(f"  CUDA:          built against CUDA {cuda['runtime']}, {cuda['devices']} device(s) visible"
                 if cuda["built"] else "  CUDA:          not built")
    if cfg["kernel_override"]:
        lines.append(f"  CONVKIT_KERNEL={cfg['kernel_override']}")
    lines.append("  kernels:")
    lines += [f"    {family:<12} {name}" for family, name in cfg["kernels"].items()]
    print("\n".join(lines), file=file if file is not None else sys.stdout)
