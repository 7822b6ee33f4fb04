"""Build and load the compiled CUDA extension.

This module is the one place that knows the kernel sources, the compiler flags and the include paths.
setup.py uses it for the ahead-of-time build, `.ci/run` for its `nvcc -c` check, and `load_extension()`
for the just-in-time build on first use.

It imports torch only inside functions, so setup.py can use it on a machine without torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

CUTLASS_REQUIREMENT = "nvidia-cutlass==4.2.0.0"
MIN_NVCC = (12, 3)
DEFAULT_CUDA_ROOT = Path("/usr/local/cuda")
BINDING = "torch_binding.cpp"
EXTENSION_NAME = "mla_backend_C"

_NVCC_FLAGS = (
    "-gencode", "arch=compute_90a,code=sm_90a",
    "-std=c++20",
    "-O3",
    "--expt-relaxed-constexpr",
    "-DNDEBUG",
    # torch's extension builder defines these; the kernels need the cuda_fp16/cuda_bf16 operators back.
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__",
    "--use_fast_math",
    "-lineinfo",
    "--ptxas-options=-v",
)
_CXX_FLAGS = ("-std=c++20", "-O3", "-DNDEBUG")
SOURCE_SUFFIXES = (".cu", ".cuh", ".cpp", ".h", ".hpp")

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_loaded: str | None = None


def nvcc_flags() -> list[str]:
    """Flags for every nvcc compile of a kernel translation unit (AOT, JIT and the CI check)."""
    return list(_NVCC_FLAGS)


def cxx_flags() -> list[str]:
    """Flags for the host compile of the torch binding."""
    return list(_CXX_FLAGS)


def kernels_dir() -> Path:
    """The directory holding the kernel sources.

    In a checkout (editable install, tests, CI) that is the repository's top-level `kernels/`; an installed
    wheel carries a copy in `mla_backend/kernels/`. The checkout is recognised by its pyproject.toml so
    that an unrelated top-level `kernels` package in site-packages is never taken for ours.
    """
    repo = _PACKAGE_DIR.parent
    if (repo / "pyproject.toml").is_file() and (repo / "kernels").is_dir():
        return repo / "kernels"
    shipped = _PACKAGE_DIR / "kernels"
    if shipped.is_dir():
        return shipped
    raise RuntimeError(
        f"mla_backend: kernel sources not found (looked in {repo / 'kernels'} and {shipped}); "
        "reinstall the package"
    )


def kernel_sources(directory: Path | None = None) -> list[Path]:
    """Translation units of the extension: every `*.cu` in the kernels directory plus the torch binding."""
    directory = Path(directory) if directory is not None else kernels_dir()
    binding = directory / BINDING
    if not binding.is_file():
        raise RuntimeError(f"mla_backend: the torch binding {binding} is missing")
    return sorted(directory.glob("*.cu")) + [binding]


class CudaToolkit(NamedTuple):
    """The CUDA toolkit as cuda_toolkit() found it (a NamedTuple: setup.py loads this file without a package)."""

    root: Path | None                 # None: none found anywhere
    found_by: str                     # "$CUDA_HOME", "$CUDA_PATH", "nvcc on PATH" or "/usr/local/cuda"
    version: tuple[int, int] | None   # nvcc's release; None if there is no nvcc or its output is unreadable

    @property
    def nvcc(self) -> Path | None:
        return self.root / "bin" / "nvcc" if self.root is not None else None


def cuda_toolkit() -> CudaToolkit:
    """The CUDA toolkit the extension is built with: the one place it is chosen. doctor reports this one, and the
    builds (first-use and `pip install`) compile with it and point torch's extension builder at it.

    In order: $CUDA_HOME, $CUDA_PATH, the toolkit of the nvcc on PATH, /usr/local/cuda. An nvcc on PATH may be a
    wrapper script outside the toolkit (torch would then take its parent folder for the toolkit): it counts only
    where include/cuda_runtime.h is next to it, and is taken as it is only when nothing else is found, so that
    toolkit_problem() names it.
    """
    found = CudaToolkit(*_find_cuda_root(), version=None)
    nvcc = found.nvcc
    return found._replace(version=nvcc_version(nvcc) if nvcc is not None and nvcc.is_file() else None)


def _find_cuda_root() -> tuple[Path | None, str]:
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return Path(os.environ[var]), f"${var}"
    on_path = shutil.which("nvcc")
    if on_path:
        for root in (Path(on_path).parent.parent, Path(on_path).resolve().parent.parent):
            if _has_runtime_headers(root):
                return root, "nvcc on PATH"
    if DEFAULT_CUDA_ROOT.is_dir():
        return DEFAULT_CUDA_ROOT, str(DEFAULT_CUDA_ROOT)
    if on_path:
        return Path(on_path).parent.parent, "nvcc on PATH"
    return None, "nowhere"


def _has_runtime_headers(root: Path) -> bool:
    return (root / "include" / "cuda_runtime.h").is_file()


def nvcc_version(nvcc: Path) -> tuple[int, int] | None:
    """nvcc's CUDA release, (13, 0); None if it does not run or says no release."""
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvcc_version(out)


def parse_nvcc_version(text: str) -> tuple[int, int] | None:
    match = re.search(r"release (\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def toolkit_problem(toolkit: CudaToolkit, torch_cuda: str | None) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) with building the extension with `toolkit` for a torch built with CUDA
    `torch_cuda`; None when nothing is. doctor shows the two in its columns; the build raises them as one error."""
    minimum = f"{MIN_NVCC[0]}.{MIN_NVCC[1]}"
    if toolkit.root is None:
        return (f"nvcc not found (looked in $CUDA_HOME, $CUDA_PATH, PATH and {DEFAULT_CUDA_ROOT})",
                f"install the CUDA toolkit >= {minimum} (the same major version as torch's CUDA) or set CUDA_HOME "
                "to it")
    if not toolkit.nvcc.is_file():
        return (f"nvcc not found: {toolkit.root} (from {toolkit.found_by}) has no bin/nvcc",
                f"set CUDA_HOME to a CUDA toolkit >= {minimum} (for example {DEFAULT_CUDA_ROOT})")
    if not _has_runtime_headers(toolkit.root):
        return (f"the CUDA toolkit at {toolkit.root} (from {toolkit.found_by}) has no include/cuda_runtime.h",
                f"set CUDA_HOME to the toolkit root (for example {DEFAULT_CUDA_ROOT})")
    if toolkit.version is None:
        return f"cannot read the CUDA version from `{toolkit.nvcc} --version`", "check that nvcc runs"
    release = f"CUDA {toolkit.version[0]}.{toolkit.version[1]}"
    if toolkit.version < MIN_NVCC:
        return (f"{toolkit.nvcc} is {release}; the kernel needs CUDA >= {minimum}",
                "set CUDA_HOME to a newer toolkit")
    torch_major = int(torch_cuda.split(".")[0]) if torch_cuda else None
    if torch_major is not None and toolkit.version[0] != torch_major:
        return (f"{toolkit.nvcc} is {release} but torch was built with CUDA {torch_cuda}",
                f"point CUDA_HOME at a CUDA {torch_major}.x toolkit")
    return None


def cutlass_include_dir() -> Path:
    """CUTLASS/CuTe headers shipped by the nvidia-cutlass wheel."""
    try:
        import cutlass_library
    except ImportError:
        cutlass_library = None
    if cutlass_library is not None:
        include = Path(cutlass_library.__file__).resolve().parent / "source" / "include"
        if (include / "cute" / "tensor.hpp").is_file():
            return include
    raise RuntimeError(
        "mla_backend: CUTLASS/CuTe headers not found (they come from the nvidia-cutlass wheel); "
        f"run `pip install {CUTLASS_REQUIREMENT}`"
    )


def include_dirs(directory: Path | None = None, cuda_root: Path | None = None) -> list[Path]:
    """Include path for kernel and binding compiles: the kernels, CUTLASS/CuTe and, under CUDA 13, CCCL.

    nvcc finds CCCL by itself; the host compile of the binding (which may include CUTLASS headers through
    the kernel headers) does not, so the toolkit's include/cccl is listed explicitly where it exists.
    """
    dirs = [Path(directory) if directory is not None else kernels_dir(), cutlass_include_dir()]
    cuda_root = cuda_root if cuda_root is not None else cuda_toolkit().root
    if cuda_root is not None and (cuda_root / "include" / "cccl").is_dir():
        dirs.append(cuda_root / "include" / "cccl")
    return dirs


def host_cflags(cuda_root: Path) -> list[str]:
    """cxx_flags() plus, for a toolkit without the CUDA library headers, those of torch's nvidia-* wheels.

    torch's ATen/cuda headers include cusparse.h, cublas_v2.h and friends. A minimal toolkit (nvcc and the
    runtime only) lacks them, but a CUDA torch from PyPI brings them in its nvidia-* wheels. -idirafter
    searches those last, so they never shadow the toolkit's own runtime headers.
    """
    flags = cxx_flags()
    if (cuda_root / "include" / "cusparse.h").is_file():
        return flags
    try:
        import nvidia
    except ImportError:
        return flags
    for root in nvidia.__path__:
        for include in sorted(Path(root).glob("*/include")):
            flags += ["-idirafter", str(include)]
    return flags


def build_key(files: list[Path], nvcc: list[str], cxx: list[str], torch_version: str,
              cuda_version: str | None, cutlass_version: str | None) -> str:
    """Hash of everything a built library depends on: source names and contents, flags, torch, CUDA, CUTLASS."""
    h = hashlib.sha256()
    for part in (nvcc, cxx, [torch_version, str(cuda_version), str(cutlass_version)]):
        h.update("\0".join(part).encode())
        h.update(b"\1")
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\1")
    return h.hexdigest()[:16]


def current_build_key(directory: Path | None = None) -> str:
    """build_key() of the sources on disk with this process's torch, CUDA and CUTLASS versions."""
    import torch

    directory = Path(directory) if directory is not None else kernels_dir()
    files = [p for p in directory.iterdir() if p.suffix in SOURCE_SUFFIXES and p.is_file()]
    return build_key(files, nvcc_flags(), cxx_flags(), torch.__version__, torch.version.cuda,
                     _installed_version("nvidia-cutlass"))


def cache_dir(key: str) -> Path:
    """Where a JIT build with this key lives: `$MLA_BACKEND_CACHE/<key>`, default `~/.cache/mla_backend/<key>`."""
    root = os.environ.get("MLA_BACKEND_CACHE") or Path.home() / ".cache" / "mla_backend"
    return Path(root) / key


def aot_library() -> Path | None:
    """The library `pip install .` built ahead of time, if it was built from the sources now on disk.

    setup.py writes the build key next to the library; a library whose key no longer matches (sources
    edited in a checkout, torch upgraded) is ignored so the JIT path rebuilds instead of loading stale code.
    """
    libs = sorted(_PACKAGE_DIR.glob("_C*.so"))
    if not libs:
        return None
    key_file = _PACKAGE_DIR / "_C.buildkey"
    if key_file.is_file() and key_file.read_text().strip() != current_build_key():
        return None
    return libs[0]


def load_extension(verbose: bool | None = None) -> str:
    """Load the CUDA extension into this process (once) and return the library's path.

    Uses the ahead-of-time build when there is a current one, else builds with ninja into cache_dir() and
    loads that. Raises RuntimeError naming what is missing: a CUDA build of torch, a GPU, a Hopper GPU,
    nvcc (>= 12.3) or the CUTLASS headers. Set MLA_BACKEND_VERBOSE=1 to see the compiler output.
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        import torch

        _require_cuda_torch(torch)
        _require_hopper_gpu(torch)
        library = aot_library()
        if library is None:
            if verbose is None:
                verbose = os.environ.get("MLA_BACKEND_VERBOSE", "") not in ("", "0")
            library = _jit_build(torch, verbose)
        torch.ops.load_library(str(library))
        _loaded = str(library)
        return _loaded


def _require_cuda_torch(torch) -> None:
    if torch.version.cuda is None:
        raise RuntimeError(
            f"mla_backend: this torch ({torch.__version__}) is built without CUDA; "
            "install a CUDA build of torch >= 2.11 (for example the cu130 wheel)"
        )


def _require_hopper_gpu(torch) -> None:
    from mla_backend import kernel_facts  # here: setup.py loads this file by path, without the package

    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise RuntimeError(f"mla_backend: no CUDA GPU is visible{hint}; the kernel needs {kernel_facts.HOPPER}")
    index = torch.cuda.current_device()
    refusal = kernel_facts.not_hopper(torch.cuda.get_device_capability(index),
                                      f"GPU {index} ({torch.cuda.get_device_name(index)})")
    if refusal is not None:
        raise RuntimeError(f"mla_backend: {refusal}")


def require_cuda_toolkit(torch, toolkit: CudaToolkit | None = None) -> Path:
    """The root of `toolkit` (default: cuda_toolkit()), checked (nvcc >= 12.3 of torch's CUDA major, headers), and
    made the toolkit torch's extension builder compiles with; RuntimeError naming what is wrong and the fix."""
    from torch.utils import cpp_extension

    toolkit = toolkit or cuda_toolkit()
    problem = toolkit_problem(toolkit, torch.version.cuda)
    if problem is not None:
        raise RuntimeError(f"mla_backend: {problem[0]}; {problem[1]}")
    # torch picked its own at import (CUDA_HOME, else the parent folder of any nvcc on PATH, even a wrapper's)
    # and reads this module global wherever it needs nvcc, headers or libraries.
    cpp_extension.CUDA_HOME = str(toolkit.root)
    return toolkit.root


def _finished_build(build_dir: Path) -> Path | None:
    done = build_dir / "BUILD_OK"
    if done.is_file():
        library = Path(done.read_text().strip())
        if library.is_file():
            return library
    return None


def _jit_build(torch, verbose: bool) -> Path:
    from torch.utils import cpp_extension

    directory = kernels_dir()
    build_dir = cache_dir(current_build_key(directory))
    library = _finished_build(build_dir)
    if library is not None:
        return library
    cuda_root = require_cuda_toolkit(torch)
    includes = include_dirs(directory, cuda_root)
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("mla_backend: building the extension needs ninja; run `pip install ninja`")
    build_dir.mkdir(parents=True, exist_ok=True)
    # One build per directory across processes. flock is released by the kernel when a process dies, unlike
    # the lock file torch's load() leaves behind when a build is killed (which makes every later load() wait
    # forever); holding the flock, any such file is stale and is removed.
    with open(build_dir / "build.flock", "w") as flock:
        try:
            fcntl.flock(flock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mla_backend: waiting for another process building in {build_dir}", file=sys.stderr, flush=True)
            fcntl.flock(flock, fcntl.LOCK_EX)
        library = _finished_build(build_dir)
        if library is not None:
            return library
        (build_dir / "lock").unlink(missing_ok=True)
        print(f"mla_backend: building CUDA extension (first use, ~2 min) in {build_dir}", file=sys.stderr, flush=True)
        start = time.monotonic()
        library = Path(cpp_extension.load(
            name=EXTENSION_NAME,
            sources=[str(p) for p in kernel_sources(directory)],
            extra_cflags=host_cflags(cuda_root),
            extra_cuda_cflags=nvcc_flags(),
            extra_include_paths=[str(p) for p in includes],
            build_directory=str(build_dir),
            verbose=verbose,
            is_python_module=False,
        ))
        # The marker lets later processes load the library without ninja or a toolchain.
        tmp = build_dir / f"BUILD_OK.{os.getpid()}"
        tmp.write_text(f"{library}\n")
        os.replace(tmp, build_dir / "BUILD_OK")
    print(f"mla_backend: built CUDA extension in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    return library


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
