"""Where the CUDA toolchain is: nvcc, the toolkit and cuBLAS, for building convkit._cuda.

Standard library only, so that setup.py can load this file before convkit is built, and the build test
(tests/test_cuda_build.py) asks the same question the build asked.

Search order, as other packages do: $CUDA_HOME (or $CUDA_PATH), then nvcc on PATH, then /usr/local/cuda.
cuBLAS: the toolkit's own, else the `nvidia-cublas` wheel (nvidia/cu13/ for CUDA 13, nvidia/cublas/ for 12)
in any site-packages folder of this interpreter.
"""
from __future__ import annotations

import glob
import os
import shutil
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# nvcc targets: A100 (sm_80) and H100 (sm_90) machine code, plus compute_90 PTX that newer GPUs JIT-compile.
GPU_ARCHS = ("sm_80", "sm_90")
PTX_ARCH = "compute_90"


@dataclass(frozen=True)
class CudaToolchain:
    """nvcc, the toolkit's include and library folders, and cuBLAS's headers and shared libraries."""

    nvcc: str
    include_dir: str
    library_dir: str
    cublas_include_dir: str
    cublas_libraries: tuple[str, ...]  # full paths: libcublas, libcublasLt

    @property
    def cublas_library_dir(self) -> str:
        return str(Path(self.cublas_libraries[0]).parent)


def _cuda_home() -> Optional[Path]:
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    nvcc = shutil.which("nvcc")
    if nvcc:
        resolved = Path(nvcc).resolve()
        if (resolved.parent.parent / "include" / "cuda_runtime.h").is_file():
            return resolved.parent.parent
        # An nvcc wrapper outside the toolkit (e.g. /usr/local/bin/nvcc): fall through to /usr/local/cuda.
    default = Path("/usr/local/cuda")
    return default if default.is_dir() else None


def _nvcc(home: Path) -> Optional[str]:
    inside = home / "bin" / "nvcc"
    if inside.is_file():
        return str(inside)
    return shutil.which("nvcc")


def _library_dir(home: Path) -> Optional[Path]:
    for name in ("lib64", "lib", "targets/x86_64-linux/lib"):
        if (home / name / "libcudart_static.a").is_file():
            return home / name
    return None


def _site_folders() -> list[Path]:
    folders = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
    return [Path(f) for f in dict.fromkeys(folders) if f and Path(f).is_dir()]


def _cublas_libraries(folder: Path) -> Optional[tuple[str, ...]]:
    """libcublas and libcublasLt in `folder` (the unversioned link, else the highest soname version)."""
    found = []
    for stem in ("libcublas", "libcublasLt"):
        candidates = sorted(glob.glob(str(folder / f"{stem}.so.[0-9]*")))
        exact = folder / f"{stem}.so"
        if exact.is_file():
            found.append(str(exact))
        elif candidates:
            found.append(min(candidates, key=len))  # libcublas.so.13 rather than libcublas.so.13.1.0.3
        else:
            return None
    return tuple(found)


def _find_cublas(home: Path, library_dir: Path) -> Optional[tuple[str, tuple[str, ...]]]:
    if (home / "include" / "cublas_v2.h").is_file():
        libraries = _cublas_libraries(library_dir)
        if libraries:
            return str(home / "include"), libraries
    for base in _site_folders():
        for header in sorted(glob.glob(str(base / "nvidia" / "*" / "include" / "cublas_v2.h"))):
            package = Path(header).parent.parent
            libraries = _cublas_libraries(package / "lib")
            if libraries:
                return str(package / "include"), libraries
    return None


def find_cuda_toolchain() -> tuple[Optional[CudaToolchain], str]:
    """(the toolchain, "") when nvcc, the CUDA runtime and cuBLAS are all found, else (None, why not)."""
    home = _cuda_home()
    if home is None:
        return None, "no CUDA toolkit: set CUDA_HOME, put nvcc on PATH, or install to /usr/local/cuda"
    nvcc = _nvcc(home)
    if nvcc is None:
        return None, f"no nvcc in {home}/bin or on PATH"
    library_dir = _library_dir(home)
    if library_dir is None or not (home / "include" / "cuda_runtime.h").is_file():
        return None, f"{home} holds no CUDA runtime (include/cuda_runtime.h, lib64/libcudart_static.a)"
    cublas = _find_cublas(home, library_dir)
    if cublas is None:
        return None, f"no cuBLAS in {home} or in an installed nvidia-cublas wheel (pip install nvidia-cublas)"
    return CudaToolchain(nvcc, str(home / "include"), str(library_dir), cublas[0], cublas[1]), ""
