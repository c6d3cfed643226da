"""Builds the convkit._C extension from csrc/, and convkit._augment from convkit/_augment.pyx with Cython.

Also links the convkit-bench executable (convkit/bin/convkit-bench) from the same object files plus
csrc/bench/executable/, so that the core is compiled once for both.

Portable by default: no -march=native. Sources under an `avx2/` folder are the only ones compiled with
-mavx2 -mfma; the kernel that runs is picked at import from the CPU's features, so one binary serves any
x86-64 CPU (and non-x86 CPUs, where the avx2/ sources are left out).

The optional CUDA backend is a second extension, convkit._cuda (so that `import convkit` never needs the CUDA
runtime): the .cu files and the csrc/**/cuda/ folders, compiled by nvcc, GEMM through cuBLAS.

Environment:
  CONVKIT_NO_OPENMP=1   build without OpenMP (single-threaded kernels)
  CONVKIT_BUILD_JOBS=N  parallel compilation jobs (default: all cores)
  CONVKIT_CUDA=1        build convkit._cuda, failing loudly if nvcc or cuBLAS is missing or nvcc fails
  CONVKIT_CUDA=0        never build it; unset: build it when the toolchain is found (convkit/_cuda_toolchain.py),
                        else, or when nvcc fails, warn and build CPU-only
"""
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from Cython.Build import cythonize
from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import Extension, setup
from setuptools.errors import CompileError, LinkError

ROOT = Path(__file__).resolve().parent
IS_X86_64 = platform.machine().lower() in {"x86_64", "amd64"}
ISA_FLAGS = {"avx2": ["-mavx2", "-mfma"]}

VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "convkit" / "_version.py").read_text()).group(1)


def isa_of(source: str):
    """The ISA folder a source lives in (`csrc/kernels/avx2/x.cc` -> 'avx2'), or None for portable code."""
    parts = Path(source).parts
    return next((p for p in parts if p in ISA_FLAGS), None)


def is_cuda_source(source: str) -> bool:
    """Sources of convkit._cuda: .cu files and everything under a `cuda/` folder."""
    return source.endswith(".cu") or "cuda" in Path(source).parts


BENCH_EXECUTABLE_DIR = "csrc/bench/executable"  # convkit-bench's own sources (a main()): not in the extension
BENCH_EXECUTABLE = Path("convkit", "bin", "convkit-bench")  # in the package, relative to its root
BINDINGS_DIR = "csrc/bindings"  # pybind11 only: in the extension, not in convkit-bench


def extension_sources():
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "csrc").rglob("*.cc"))
    sources = [s for s in sources if not is_cuda_source(s) and not s.startswith(BENCH_EXECUTABLE_DIR + "/")]
    if not IS_X86_64:
        sources = [s for s in sources if isa_of(s) is None]
    return sources


class BuildExt(build_ext):
    """Adds OpenMP when the compiler takes it and per-file ISA flags for the avx2/ translation units."""

    def _compiler_accepts(self, flags):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.cc"
            src.write_text("#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
            try:
                objs = self.compiler.compile([str(src)], output_dir=tmp, extra_postargs=flags)
                self.compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
            except Exception:  # any compiler or linker failure means "no"
                return False
        return True

    def build_extensions(self):
        openmp = os.environ.get("CONVKIT_NO_OPENMP", "") in ("", "0")
        if openmp and not self._compiler_accepts(["-fopenmp"]):
            self.announce("convkit: the compiler does not accept -fopenmp; building single-threaded", level=3)
            openmp = False
        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")

        compile_one = self.compiler._compile
        self.compiler.src_extensions.append(".cu")

        def compile_with_isa_flags(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if src.endswith(".cu"):
                command = [CUDA_TOOLCHAIN.nvcc, "-c", src, "-o", obj, *pp_opts, *nvcc_flags()]
                print(" ".join(command), flush=True)
                subprocess.check_call(command)
                return
            isa = isa_of(src)
            flags = list(extra_postargs) + (ISA_FLAGS[isa] if isa else [])
            compile_one(obj, src, ext, cc_args, flags, pp_opts)

        self.compiler._compile = compile_with_isa_flags
        super().build_extensions()

    def build_extension(self, ext):
        if ext.name == "convkit._C":
            super().build_extension(ext)
            self._link_bench_executable(ext)
            return
        if ext.name != "convkit._cuda" or CUDA_MODE == "1":
            return super().build_extension(ext)
        try:  # auto-detected: a failing nvcc or link costs the CUDA backend, not the build
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 (compiler errors come as several types)
            warnings.warn(f"convkit: building the CUDA backend failed ({err}); building CPU-only. "
                          "Set CONVKIT_CUDA=1 to make this an error, CONVKIT_CUDA=0 to skip it.")

    def _link_bench_executable(self, ext):
        """convkit/bin/convkit-bench, next to the extension (in place or in the build tree that pip installs):
        the extension's object files less the bindings, plus the executable's own sources."""
        core = [s for s in ext.sources if not s.startswith(BINDINGS_DIR + "/")]
        own = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / BENCH_EXECUTABLE_DIR).glob("*.cc"))
        try:
            objects = self.compiler.object_filenames(core, output_dir=self.build_temp)
            objects += self.compiler.compile(own, output_dir=self.build_temp, macros=ext.define_macros,
                                             include_dirs=ext.include_dirs, extra_postargs=ext.extra_compile_args,
                                             depends=ext.depends)
            self.compiler.link_executable(objects, BENCH_EXECUTABLE.name, output_dir=str(self._built_executable().parent),
                                          extra_postargs=ext.extra_link_args, target_lang="c++")
        except (CompileError, LinkError) as err:  # the library works without it; `convkit bench --native` says so
            self.warn(f"convkit: the convkit-bench executable could not be built ({err}); continuing without it")

    def copy_extensions_to_source(self):
        """--inplace: setuptools builds into build/lib, then copies the extensions (only) into the source tree."""
        super().copy_extensions_to_source()
        built = self._built_executable()
        if built.is_file():
            self.mkpath(str(ROOT / BENCH_EXECUTABLE.parent))
            self.copy_file(str(built), str(ROOT / BENCH_EXECUTABLE), preserve_mode=True)

    def _built_executable(self) -> Path:
        """Where convkit-bench is linked: in the build tree, next to the extension that pip installs."""
        return Path(self.build_lib) / BENCH_EXECUTABLE


INCLUDE_LINE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def local_includes(source: Path, seen: set) -> set:
    """Every csrc header `source` includes, directly or through other headers (quoted includes only)."""
    for name in INCLUDE_LINE.findall(source.read_text(errors="replace")):
        for base in (source.parent, ROOT / "csrc"):
            header = (base / name).resolve()
            if header.is_file() and header not in seen:
                seen.add(header)
                local_includes(header, seen)
                break
    return seen


def needs_recompile(obj: str, src: str) -> bool:
    """Recompile a translation unit only when it or a header it includes is newer than its object file.

    setuptools alone rebuilds every source whenever any file changes; tracking includes keeps a one-file edit
    to a one-file rebuild (the default build still compiles everything once from a clean tree)."""
    if not os.path.exists(obj):
        return True
    built = os.path.getmtime(obj)
    source = Path(src) if Path(src).is_absolute() else ROOT / src
    return any(p.stat().st_mtime > built for p in {source} | local_includes(source, set()))


ParallelCompile("CONVKIT_BUILD_JOBS", default=0, needs_recompile=needs_recompile).install()

extension = Pybind11Extension(
    "convkit._C",
    sources=extension_sources(),
    include_dirs=["csrc"],
    depends=sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "csrc").rglob("*.h")),
    cxx_std=17,
    define_macros=[
        ("CONVKIT_VERSION", f'"{VERSION}"'),
        ("CONVKIT_HAVE_AVX2", "1" if IS_X86_64 else "0"),
    ],
    extra_compile_args=["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)


def load_cuda_toolchain_module():
    """convkit/_cuda_toolchain.py, loaded by path: convkit itself is not built yet."""
    spec = importlib.util.spec_from_file_location("_cuda_toolchain", ROOT / "convkit" / "_cuda_toolchain.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOLCHAINS = load_cuda_toolchain_module()


def resolve_cuda():
    """(mode, toolchain or None) from CONVKIT_CUDA: '1' requires the toolchain, '0' skips, unset detects."""
    mode = os.environ.get("CONVKIT_CUDA", "")
    if mode not in ("", "0", "1"):
        raise SystemExit(f"CONVKIT_CUDA must be 0, 1 or unset, got {mode!r}")
    if mode == "0":
        return mode, None
    toolchain, why_not = TOOLCHAINS.find_cuda_toolchain()
    if toolchain is None:
        if mode == "1":
            raise SystemExit(f"CONVKIT_CUDA=1, but {why_not}")
        if shutil.which("nvcc") or os.environ.get("CUDA_HOME"):
            warnings.warn(f"convkit: building CPU-only: {why_not}")
    return mode, toolchain


CUDA_MODE, CUDA_TOOLCHAIN = resolve_cuda()


def nvcc_flags():
    gencode = [f"-gencode=arch=compute_{a[3:]},code={a}" for a in TOOLCHAINS.GPU_ARCHS]
    gencode.append(f"-gencode=arch={TOOLCHAINS.PTX_ARCH},code={TOOLCHAINS.PTX_ARCH}")
    # --fmad=false: no contracted multiply-adds, so that elementwise kernels round as the CPU code does.
    return ["-std=c++17", "-O3", "--expt-relaxed-constexpr", "--extended-lambda", "--fmad=false",
            "-Xcompiler=-fPIC,-fvisibility=hidden", f"-I{CUDA_TOOLCHAIN.cublas_include_dir}", *gencode]


def cuda_extension(toolchain):
    """convkit._cuda: pybind11 bindings (g++) and kernels (nvcc), the CUDA runtime linked statically (import
    needs only the driver, loaded when first used) and cuBLAS found beside convkit or where it was at build."""
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "csrc").rglob("*") if p.suffix in (".cc", ".cu"))
    cublas_dir = Path(toolchain.cublas_library_dir)
    rpaths = [str(cublas_dir)]
    if cublas_dir.parent.parent.name == "nvidia":  # the nvidia-cublas wheel: also found beside an installed convkit
        rpaths.insert(0, f"$ORIGIN/../nvidia/{cublas_dir.parent.name}/lib")
    return Pybind11Extension(
        "convkit._cuda",
        sources=[s for s in sources if is_cuda_source(s)],
        include_dirs=["csrc"],
        depends=extension.depends,
        cxx_std=17,
        library_dirs=[toolchain.library_dir],
        libraries=["cudart_static", "rt", "dl", "pthread"],
        extra_objects=list(toolchain.cublas_libraries),
        extra_compile_args=["-O2", "-Wall"],
        extra_link_args=[f"-Wl,-rpath,{path}" for path in rpaths],
    )


# The data augmentation kernels (C, OpenMP through Cython's prange; BuildExt adds -fopenmp as for _C).
augment_extension = cythonize(
    [Extension("convkit._augment", sources=["convkit/_augment.pyx"], extra_compile_args=["-O3"])],
    compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
)

cuda_extensions = [cuda_extension(CUDA_TOOLCHAIN)] if CUDA_TOOLCHAIN is not None else []

setup(version=VERSION, ext_modules=[extension, *augment_extension, *cuda_extensions],
      cmdclass={"build_ext": BuildExt})
