"""Packaging with an optional ahead-of-time build of the CUDA extension.

`pip install --no-build-isolation .` compiles `mla_backend._C` when the installed torch has CUDA and nvcc
is found; otherwise it installs pure Python and `mla_backend._build.load_extension()` builds on first use.
Either way the kernel sources are copied into the package so the first-use build works from a wheel.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _load_build_module():
    # By path, so that setup.py needs neither an installed mla_backend nor torch.
    spec = importlib.util.spec_from_file_location("_mla_backend_build", ROOT / "mla_backend" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_build = _load_build_module()


def _require_bdist_wheel():
    """pip builds a wheel, with setuptools' `bdist_wheel` command: setuptools >= 70.1 has it, older setuptools
    take it from the `wheel` package. An isolated build installs both; --no-build-isolation uses what this
    environment has, and a fresh venv's setuptools is older (Python 3.11) or absent (3.12)."""
    try:
        from setuptools.command.bdist_wheel import bdist_wheel  # noqa: F401
        return
    except ImportError:
        pass
    try:
        from wheel.bdist_wheel import bdist_wheel  # noqa: F401
    except ImportError:
        sys.exit("mla_backend setup: building a wheel needs setuptools >= 70.1 (or the `wheel` package), and "
                 "--no-build-isolation builds with what is installed: run `pip install 'setuptools>=70.1'` first")


_require_bdist_wheel()


class BuildPyWithKernels(build_py):
    """Copies kernels/ into the built package as mla_backend/kernels/ for the first-use build."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "mla_backend" / "kernels"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for source in sorted((ROOT / "kernels").iterdir()):
            if source.is_file() and source.suffix in _build.SOURCE_SUFFIXES:
                shutil.copy2(source, target / source.name)


def _say(message):
    print(f"mla_backend setup: {message}", file=sys.stderr)


def _aot_build():
    """(ext_modules, cmdclass) for the ahead-of-time build, or ([], {}) when it is not possible here."""
    if os.environ.get("MLA_BACKEND_NO_AOT") == "1":
        _say("MLA_BACKEND_NO_AOT=1: installing pure Python, the extension is built on first use")
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CUDAExtension
    except ImportError:
        _say("torch is not importable in the build environment (use --no-build-isolation for an "
             "ahead-of-time build); installing pure Python, the extension is built on first use")
        return [], {}
    if torch.version.cuda is None:
        _say(f"torch {torch.__version__} has no CUDA; installing pure Python, the extension is built on first use")
        return [], {}
    toolkit = _build.cuda_toolkit()
    if toolkit.nvcc is None or not toolkit.nvcc.is_file():
        _say("nvcc not found; installing pure Python, the extension is built on first use")
        return [], {}
    cuda_root = _build.require_cuda_toolkit(torch, toolkit)  # the toolkit doctor reports; torch's builder uses it

    class BuildExtensionWithKey(BuildExtension):
        """Records the build key next to the library so a stale library is never loaded."""

        def run(self):
            super().run()
            for ext in self.extensions:
                key_file = Path(self.get_ext_fullpath(ext.name)).parent / "_C.buildkey"
                key_file.write_text(_build.current_build_key(ROOT / "kernels") + "\n")

    _say(f"building the CUDA extension ahead of time with {cuda_root}/bin/nvcc")
    extension = CUDAExtension(
        name="mla_backend._C",
        sources=[str(path.relative_to(ROOT)) for path in _build.kernel_sources(ROOT / "kernels")],
        include_dirs=[str(path) for path in _build.include_dirs(ROOT / "kernels", cuda_root)],
        extra_compile_args={"cxx": _build.host_cflags(cuda_root), "nvcc": _build.nvcc_flags()},
    )
    return [extension], {"build_ext": BuildExtensionWithKey}


ext_modules, cmdclass = _aot_build()
setup(ext_modules=ext_modules, cmdclass={"build_py": BuildPyWithKernels, **cmdclass})
