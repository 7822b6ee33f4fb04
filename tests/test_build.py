"""CPU tests of the extension build: flags, sources, cache key, packaging, and the errors a user sees."""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

from mla_backend import _build

REPO = Path(__file__).resolve().parent.parent


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def kernel_tree(tmp_path):
    directory = tmp_path / "kernels"
    for name in ("decode_bf16.cu", "combine.cu", "decode.cuh", "params.h"):
        _write(directory / name, f"// {name}\n")
    _write(directory / _build.BINDING, "// binding\n")
    return directory


def _key(files, nvcc=None, cxx=None, torch_version="2.13.0", cuda="13.0", cutlass="4.2.0.0"):
    return _build.build_key(files, nvcc or _build.nvcc_flags(), cxx or _build.cxx_flags(), torch_version, cuda, cutlass)


def test_flags_target_sm90a_with_cxx20():
    flags = _build.nvcc_flags()
    assert flags[flags.index("-gencode") + 1] == "arch=compute_90a,code=sm_90a"
    assert "-std=c++20" in flags
    assert "-std=c++20" in _build.cxx_flags()
    # torch's extension builder defines __CUDA_NO_HALF_OPERATORS__ & co.; the kernels need them undone.
    assert "-U__CUDA_NO_HALF_OPERATORS__" in flags
    assert "-U__CUDA_NO_BFLOAT16_CONVERSIONS__" in flags


def test_sources_are_every_cu_file_plus_the_binding(kernel_tree):
    names = [p.name for p in _build.kernel_sources(kernel_tree)]
    assert names == ["combine.cu", "decode_bf16.cu", _build.BINDING]


def test_repository_sources_are_every_kernel_file_plus_the_binding():
    kernels = REPO / "kernels"
    assert _build.kernels_dir() == kernels
    expected = set(kernels.glob("*.cu")) | {kernels / _build.BINDING}
    assert set(_build.kernel_sources()) == expected


def test_missing_binding_is_named(kernel_tree):
    (kernel_tree / _build.BINDING).unlink()
    with pytest.raises(RuntimeError, match=_build.BINDING):
        _build.kernel_sources(kernel_tree)


def test_build_key_changes_when_a_source_or_flag_changes(kernel_tree):
    files = sorted(kernel_tree.iterdir())
    key = _key(files)
    assert _key(files) == key

    header = kernel_tree / "decode.cuh"
    header.write_text(header.read_text() + "// edited\n")
    edited = _key(files)
    assert edited != key

    assert _key(files + [_write(kernel_tree / "extra.cuh", "")]) != edited
    assert _key(files, nvcc=_build.nvcc_flags() + ["-G"]) != edited
    assert _key(files, cxx=_build.cxx_flags() + ["-g"]) != edited
    assert _key(files, torch_version="2.11.0") != edited
    assert _key(files, cuda="12.8") != edited
    assert _key(files, cutlass="4.3.0") != edited


def test_current_build_key_covers_headers_but_not_other_files(kernel_tree):
    key = _build.current_build_key(kernel_tree)
    _write(kernel_tree / "notes.txt", "not a source")
    assert _build.current_build_key(kernel_tree) == key
    _write(kernel_tree / "params.h", "// changed\n")
    assert _build.current_build_key(kernel_tree) != key


def test_cache_dir_is_keyed_under_env_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path))
    assert _build.cache_dir("abc") == tmp_path / "abc"
    monkeypatch.delenv("MLA_BACKEND_CACHE")
    assert _build.cache_dir("abc") == Path.home() / ".cache" / "mla_backend" / "abc"


def test_include_dirs_find_the_cutlass_wheel_headers():
    dirs = _build.include_dirs()
    assert any((d / "cute" / "arch" / "mma_sm90_gmma.hpp").is_file() for d in dirs)
    assert any((d / "cutlass" / "cutlass.h").is_file() for d in dirs)
    assert dirs[0] == _build.kernels_dir()


# --- load_extension(): each missing piece is named ---------------------------------------------------------


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process state with nothing loaded, no AOT library and an empty build cache."""
    monkeypatch.setattr(_build, "_loaded", None)
    monkeypatch.setattr(_build, "aot_library", lambda: None)
    monkeypatch.setenv("MLA_BACKEND_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CUDA_PATH", raising=False)
    # restored afterwards: a build points torch at its toolkit
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", cpp_extension.CUDA_HOME)
    return tmp_path


def _pretend_gpu(monkeypatch, capability=(9, 0), name="NVIDIA H100 80GB HBM3", cuda="13.0"):
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)


def _fake_toolkit(root: Path, release: str, headers: bool = True) -> Path:
    nvcc = _write(root / "bin" / "nvcc", f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.1'\n")
    nvcc.chmod(0o755)
    if headers:
        _write(root / "include" / "cuda_runtime.h", "")
    return root


def test_cpu_only_torch_is_named(fresh, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(RuntimeError, match="built without CUDA"):
        _build.load_extension()


def test_missing_gpu_is_named(fresh, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
        _build.load_extension()


def test_non_hopper_gpu_is_named_with_its_capability(fresh, monkeypatch):
    _pretend_gpu(monkeypatch, capability=(8, 0), name="NVIDIA A100-SXM4-80GB")
    refusal = r"needs a Hopper GPU \(.*sm_90a.*, but GPU 0 \(NVIDIA A100-SXM4-80GB\) has compute capability 8\.0"
    with pytest.raises(RuntimeError, match=refusal):
        _build.load_extension()


def test_missing_nvcc_is_named(fresh, monkeypatch):
    _pretend_gpu(monkeypatch)
    monkeypatch.setenv("CUDA_HOME", str(fresh / "no_toolkit"))
    with pytest.raises(RuntimeError, match="nvcc not found"):
        _build.load_extension()


def test_toolkit_without_headers_is_named(fresh, monkeypatch):
    _pretend_gpu(monkeypatch)
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(fresh / "cuda", "13.0", headers=False)))
    with pytest.raises(RuntimeError, match=r"no include/cuda_runtime\.h; set CUDA_HOME"):
        _build.load_extension()


def test_old_nvcc_is_named(fresh, monkeypatch):
    _pretend_gpu(monkeypatch, cuda="12.1")
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(fresh / "cuda", "12.1")))
    with pytest.raises(RuntimeError, match=r"CUDA 12\.1; the kernel needs CUDA >= 12\.3"):
        _build.load_extension()


def test_nvcc_of_another_major_than_torch_is_named(fresh, monkeypatch):
    _pretend_gpu(monkeypatch, cuda="13.0")
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(fresh / "cuda", "12.8")))
    with pytest.raises(RuntimeError, match=r"CUDA 12\.8 but torch was built with CUDA 13\.0"):
        _build.load_extension()


def test_missing_cutlass_names_the_wheel(fresh, monkeypatch):
    _pretend_gpu(monkeypatch)
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(fresh / "cuda", "13.0")))
    monkeypatch.setitem(sys.modules, "cutlass_library", None)
    with pytest.raises(RuntimeError, match=r"pip install nvidia-cutlass==4\.2\.0\.0"):
        _build.load_extension()


# --- cuda_toolkit(): doctor reports the toolkit the build compiles with ------------------------------------------


@pytest.fixture
def toolkits(fresh, monkeypatch):
    """No CUDA_HOME/CUDA_PATH, an empty PATH and no /usr/local/cuda; the test adds what it needs."""
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(_write(fresh / "empty_path" / ".keep", "").parent))
    monkeypatch.setattr(_build, "DEFAULT_CUDA_ROOT", fresh / "usr-local-cuda")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    return fresh


def _wrapper_on_path(monkeypatch, directory: Path, release: str) -> Path:
    """An nvcc on PATH that is a script outside any toolkit (like /usr/local/bin/nvcc exec-ing the real one)."""
    nvcc = _write(directory / "bin" / "nvcc", f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V1'\n")
    nvcc.chmod(0o755)
    monkeypatch.setenv("PATH", str(nvcc.parent))
    return nvcc


def _doctor_nvcc_row():
    from mla_backend.cli import doctor

    return next(c for c in doctor._toolchain_checks(torch, needed=True) if c.name == "nvcc")


def _build_toolkit() -> Path | str:
    """The root the build compiles with (and hands torch), or its error."""
    try:
        root = _build.require_cuda_toolkit(torch)
    except RuntimeError as exc:
        return str(exc)
    assert cpp_extension.CUDA_HOME == str(root)
    return root


def test_cuda_home_wins_and_both_use_it(toolkits, monkeypatch):
    chosen = _fake_toolkit(toolkits / "cuda-13.0", "13.0")
    _fake_toolkit(_build.DEFAULT_CUDA_ROOT, "12.8")
    _wrapper_on_path(monkeypatch, toolkits / "wrapper", "12.4")
    monkeypatch.setenv("CUDA_HOME", str(chosen))
    row = _doctor_nvcc_row()
    assert row.status == "ok" and row.value == f"{chosen / 'bin' / 'nvcc'}, CUDA 13.0"
    assert _build_toolkit() == chosen


def test_a_wrapper_nvcc_on_path_is_not_taken_for_the_toolkit(toolkits, monkeypatch):
    real = _fake_toolkit(_build.DEFAULT_CUDA_ROOT, "13.0")
    wrapper = _wrapper_on_path(monkeypatch, toolkits / "usr-local", "13.0")
    row = _doctor_nvcc_row()
    assert row.status == "ok" and row.value.startswith(str(real / "bin" / "nvcc"))
    assert _build_toolkit() == real != wrapper.parent.parent


def test_an_nvcc_on_path_inside_a_toolkit_is_taken(toolkits, monkeypatch):
    _fake_toolkit(_build.DEFAULT_CUDA_ROOT, "12.8")
    on_path = _fake_toolkit(toolkits / "cuda-13.0", "13.0")
    monkeypatch.setenv("PATH", str(on_path / "bin"))
    assert _doctor_nvcc_row().value.startswith(str(on_path / "bin" / "nvcc"))
    assert _build_toolkit() == on_path


def test_a_lone_wrapper_is_named_by_both(toolkits, monkeypatch):
    wrapper = _wrapper_on_path(monkeypatch, toolkits / "usr-local", "13.0")
    row = _doctor_nvcc_row()
    what = f"the CUDA toolkit at {wrapper.parent.parent} (from nvcc on PATH) has no include/cuda_runtime.h"
    assert row.status == "FAIL" and row.value == what and "set CUDA_HOME" in row.fix
    assert _build_toolkit() == f"mla_backend: {what}; {row.fix}"


def test_no_toolkit_anywhere_is_named_by_both(toolkits):
    row = _doctor_nvcc_row()
    assert row.status == "FAIL" and row.value.startswith("nvcc not found") and "CUDA_HOME" in row.fix
    assert _build_toolkit() == f"mla_backend: {row.value}; {row.fix}"


def test_a_toolkit_of_another_major_than_torch_is_refused_by_both(toolkits, monkeypatch):
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(toolkits / "cuda-12.8", "12.8")))
    row = _doctor_nvcc_row()
    assert row.status == "FAIL" and "CUDA 12.8 but torch was built with CUDA 13.0" in row.value
    assert _build_toolkit() == f"mla_backend: {row.value}; {row.fix}"


def test_nvcc_version_is_parsed():
    assert _build.parse_nvcc_version("Cuda compilation tools, release 13.0, V13.0.88") == (13, 0)
    assert _build.parse_nvcc_version("garbage") is None


# --- load_extension(): caching and loading ------------------------------------------------------------------


def test_finished_build_loads_without_a_toolchain(fresh, monkeypatch):
    _pretend_gpu(monkeypatch)
    build_dir = _build.cache_dir(_build.current_build_key())
    library = _write(build_dir / "mla_backend_C.so", "")
    _write(build_dir / "BUILD_OK", f"{library}\n")

    def no_toolchain(_torch):
        raise AssertionError("a finished build must not look for nvcc")

    monkeypatch.setattr(_build, "require_cuda_toolkit", no_toolchain)
    loaded = []
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    assert _build.load_extension() == str(library)
    assert loaded == [str(library)]


def test_load_extension_builds_and_loads_once_across_threads(fresh, monkeypatch):
    _pretend_gpu(monkeypatch)
    builds, loads = [], []

    def slow_build(_torch, _verbose):
        builds.append(1)
        time.sleep(0.2)
        return fresh / "lib.so"

    monkeypatch.setattr(_build, "_jit_build", slow_build)
    monkeypatch.setattr(torch.ops, "load_library", loads.append)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_build.load_extension())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [str(fresh / "lib.so")] * 8
    assert len(builds) == 1 and len(loads) == 1


def test_stale_aot_library_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setattr(_build, "_PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(_build, "current_build_key", lambda directory=None: "current")
    assert _build.aot_library() is None
    library = _write(tmp_path / "_C.cpython-312-x86_64-linux-gnu.so", "")
    assert _build.aot_library() == library
    _write(tmp_path / "_C.buildkey", "older\n")
    assert _build.aot_library() is None
    _write(tmp_path / "_C.buildkey", "current\n")
    assert _build.aot_library() == library


# --- packaging ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.version.cuda is not None, reason="with CUDA torch the wheel build compiles the extension")
def test_wheel_ships_kernel_sources_and_console_script(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "kernels")
    shutil.copytree(REPO / "mla_backend", source / "mla_backend", ignore=ignore)
    shutil.copytree(REPO / "kernels", source / "kernels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", str(source), "-w", str(tmp_path)],
        check=True,
    )
    (wheel,) = tmp_path.glob("mla_backend-0.1.0-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.split("/")[-1] for n in names if n.startswith("mla_backend/kernels/")}
    expected = {p.name for p in (REPO / "kernels").iterdir() if p.suffix in _build.SOURCE_SUFFIXES}
    assert shipped == expected
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mla-backend = mla_backend.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_setup_without_a_bdist_wheel_command_says_which_setuptools_to_install(tmp_path):
    # A fresh Python 3.11 venv has setuptools 65 and no `wheel`: setuptools' "invalid command 'bdist_wheel'" is
    # replaced by what to install. The blocker hides both homes of bdist_wheel.
    blocker = textwrap.dedent(f"""
        import runpy, sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name in ("setuptools.command.bdist_wheel", "wheel") or name.startswith("wheel."):
                    raise ImportError(name)
        sys.meta_path.insert(0, Hide())
        sys.argv = ["setup.py", "--name"]
        runpy.run_path({str(REPO / "setup.py")!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "MLA_BACKEND_NO_AOT": "1"})
    assert result.returncode != 0
    assert "pip install 'setuptools>=70.1'" in result.stderr
