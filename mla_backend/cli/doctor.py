"""`mla-backend doctor`: can this machine run the kernel, and if not, what is missing and how to fix it.

collect() looks at the machine (torch, GPU, driver, nvcc, CUTLASS, the built extension, vLLM, SGLang) and
returns one Check per row; render() prints them as a table followed by the fixes. A FAIL row means the
kernel cannot run here; WARN rows do not stop it (an extension not built yet is built on first use).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, _build
from ..engines import ENGINES
from ..kernel_facts import HOPPER, is_hopper, parse_capability
from . import terminal

OK, WARN, FAIL, INFO = "ok", "WARN", "FAIL", "-"


@dataclass
class Check:
    name: str
    status: str
    value: str
    fix: str | None = None


def collect(build: bool = False, verbose: bool = False) -> list[Check]:
    """Every check, in table order. build=True builds the extension if it is not built yet (with progress)."""
    checks = [Check("mla_backend", INFO, f"{__version__} ({Path(__file__).resolve().parents[1]})"),
              Check("Python", INFO, f"{platform.python_version()} ({sys.executable})")]
    try:
        import torch
    except ImportError as exc:
        checks.append(Check("torch", FAIL, f"not importable: {exc}", "pip install 'torch>=2.11' (a CUDA build)"))
        return checks + _engine_checks()
    smi = nvidia_smi()
    checks += [_torch_check(torch), _gpu_check(torch, smi), _driver_check(torch, smi)]
    gpu_ready = all(c.status != FAIL for c in checks)
    built = _built_library(torch)
    toolchain = _toolchain_checks(torch, needed=built is None)
    checks += toolchain
    checks.append(_extension_check(torch, built, gpu_ready, all(c.status != FAIL for c in toolchain), build, verbose))
    return checks + _engine_checks()


def can_run(checks: list[Check]) -> bool:
    return all(c.status != FAIL for c in checks)


def render(checks: list[Check], width: int | None = None, colour: bool = False) -> str:
    """The checks as a table, a one-line verdict, and a numbered list of fixes, wrapped to `width` columns
    (default: the terminal's); colour=True paints FAIL and WARN."""
    width = width or terminal.width()
    name_w = max(len(c.name) for c in checks)
    details_at = name_w + len("  status  ")
    lines = [f"{'check':<{name_w}}  status  details",
             f"{'-' * name_w}  ------  {'-' * max(min(40, width - details_at), 7)}"]
    for c in checks:
        status = terminal.paint(f"{c.status:<6}", c.status, colour)
        details = terminal.fill(c.value, width, indent=details_at, start=details_at)
        lines.append(f"{c.name:<{name_w}}  {status}  {details}")
    failed = [c.name for c in checks if c.status == FAIL]
    lines.append("")
    if failed:
        lines.append(terminal.fill(f"Result: this machine cannot run the mla_backend kernel (failed: "
                                   f"{', '.join(failed)}).", width, indent=2))
    else:
        lines.append("Result: this machine can run the mla_backend kernel.")
    fixes = [c for c in checks if c.fix and c.status in (FAIL, WARN)]
    if fixes:
        lines += ["", "To fix:"]
        for i, c in enumerate(fixes, 1):
            item = f"  {i}. "
            lines.append(terminal.fill(f"{item}{c.name}: {c.fix}", width, indent=len(item)))
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    """The checks for a program: {"can_run": bool, "checks": [{name, status, detail, fix}]}, status one of
    ok, warn, fail, info."""
    words = {OK: "ok", WARN: "warn", FAIL: "fail", INFO: "info"}
    rows = [{"name": c.name, "status": words[c.status], "detail": c.value, "fix": c.fix} for c in checks]
    return json.dumps({"can_run": can_run(checks), "checks": rows}, indent=2)


def main(build: bool = False, verbose: bool = False, json_output: bool = False) -> int:
    """Print the checks (a table, or JSON); 0 exactly when this machine can run the kernel."""
    with _quiet_cuda_home_notice():
        checks = collect(build=build, verbose=verbose)
    if json_output:
        print(as_json(checks), flush=True)
    else:
        print(render(checks, colour=terminal.colour_wanted(sys.stdout)), flush=True)
    return 0 if can_run(checks) else 1


@contextlib.contextmanager
def _quiet_cuda_home_notice():
    """A CUDA torch on a machine without a GPU logs "No CUDA runtime is found, using CUDA_HOME=..." when
    torch.utils.cpp_extension is first imported, above the table that says the same in its GPU row."""
    logger = logging.getLogger("torch.utils.cpp_extension")

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


# ----------------------------------------------------------------------------------------------------
# Facts


def nvidia_smi() -> dict:
    """{'gpus': [{name, compute_cap, driver, memory}], 'cuda': driver's CUDA version} or {'error': why}."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"error": "nvidia-smi not found"}
    try:
        query = subprocess.run([exe, "--query-gpu=name,compute_cap,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=False)
        header = subprocess.run([exe], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"nvidia-smi failed: {exc}"}
    if query.returncode != 0:
        return {"error": f"nvidia-smi failed: {(query.stderr or query.stdout).strip()[:200]}"}
    gpus = []
    for line in query.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(dict(zip(("name", "compute_cap", "driver", "memory"), parts, strict=True)))
    match = re.search(r"CUDA Version:\s*([\d.]+)", header)
    return {"gpus": gpus, "cuda": match.group(1) if match else None}


def engine_verdict(engine: str, version: str | None) -> tuple[str, str]:
    """(status, words) for an installed engine version, from mla_backend.engines' table: ok where it was verified
    on a GPU, WARN on CPU only or not at all; never FAIL: the kernel itself needs no engine."""
    table = ENGINES[engine]
    if version is None:
        return (INFO if table.optional else WARN), "not installed"
    release = table.verified(version)
    if release is None:
        return WARN, (f"{version}: not a verified version; mla_backend's plugin stays out of it (verified: "
                      f"{table.verified_list()})")
    if release.on_gpu:
        return OK, f"{version}: verified on {release.where} ({release.checked})"
    return WARN, f"{version}: verified on CPU only ({release.checked}); not yet on a GPU"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------------------------
# Checks


def _torch_check(torch) -> Check:
    if torch.version.cuda is None:
        return Check("torch", FAIL, f"{torch.__version__}, built without CUDA",
                     "install a CUDA build of torch >= 2.11 (`pip install vllm==0.26.0` brings torch 2.11.0 "
                     "with CUDA 13.0)")
    return Check("torch", OK, f"{torch.__version__} (CUDA {torch.version.cuda})")


def _gpu_check(torch, smi: dict) -> Check:
    if torch.version.cuda is not None and torch.cuda.is_available():
        gpus = [(torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
                for i in range(torch.cuda.device_count())]
        source = "torch"
    else:
        gpus = [(g["name"], parse_capability(g["compute_cap"])) for g in smi.get("gpus", [])]
        source = "nvidia-smi"
    if not gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        return Check("GPU", FAIL, f"none visible ({smi.get('error') or 'nvidia-smi lists no GPU'}{where})",
                     "run on an NVIDIA Hopper GPU (H100/H200/H800/H20: AWS p5.48xlarge, p5en.48xlarge, "
                     "a Databricks or SageMaker GPU instance of those)")
    names = sorted({f"{name}, compute capability {cap[0]}.{cap[1]}" if cap else name for name, cap in gpus})
    value = f"{len(gpus)} x " + "; ".join(names) + f" (seen by {source})"
    current = gpus[torch.cuda.current_device()] if source == "torch" else gpus[0]
    if not is_hopper(current[1]):
        return Check("GPU", FAIL, value, f"the kernel needs {HOPPER}; run on one")
    if source != "torch":
        return Check("GPU", FAIL, value + "; torch cannot use it",
                     "see the torch and NVIDIA driver rows: torch needs a CUDA build and a driver for its CUDA")
    return Check("GPU", OK, value)


def _driver_check(torch, smi: dict) -> Check:
    if "error" in smi:
        return Check("NVIDIA driver", FAIL, smi["error"], "install the NVIDIA driver (>= 580 for CUDA 13)")
    drivers = sorted({g["driver"] for g in smi["gpus"]}) or ["unknown"]
    value = f"{', '.join(drivers)} (supports CUDA {smi['cuda'] or 'unknown'})"
    if torch.version.cuda and smi["cuda"] and \
            int(smi["cuda"].split(".")[0]) < int(torch.version.cuda.split(".")[0]):
        return Check("NVIDIA driver", FAIL, value,
                     f"torch was built with CUDA {torch.version.cuda}: update the driver, or install a torch "
                     f"built for CUDA {smi['cuda'].split('.')[0]}.x")
    return Check("NVIDIA driver", OK, value)


def _built_library(torch) -> Path | None:
    """The extension library that load_extension() would load without compiling, if there is one."""
    if torch.version.cuda is None:
        return None
    try:
        library = _build.aot_library()
        if library is None:
            library = _build._finished_build(_build.cache_dir(_build.current_build_key()))
    except (RuntimeError, OSError):
        return None
    return library


def _toolchain_checks(torch, needed: bool) -> list[Check]:
    """nvcc, CUTLASS headers and ninja: FAIL if missing while the extension still has to be built, else WARN."""
    missing = FAIL if needed else WARN
    why = "" if needed else " (not needed: the extension is already built)"
    toolkit = _build.cuda_toolkit()  # the one the build uses
    problem = _build.toolkit_problem(toolkit, torch.version.cuda)
    if problem is not None:
        checks = [Check("nvcc", missing, problem[0] + why, problem[1])]
    else:
        checks = [Check("nvcc", OK, f"{toolkit.nvcc}, CUDA {toolkit.version[0]}.{toolkit.version[1]}")]

    try:
        checks.append(Check("CUTLASS headers", OK, str(_build.cutlass_include_dir())))
    except RuntimeError:
        checks.append(Check("CUTLASS headers", missing, "not found" + why, f"pip install {_build.CUTLASS_REQUIREMENT}"))

    from torch.utils import cpp_extension

    if cpp_extension.is_ninja_available():
        checks.append(Check("ninja", OK, shutil.which("ninja") or "available"))
    else:
        checks.append(Check("ninja", missing, "not found" + why, "pip install ninja"))
    return checks


def _extension_check(torch, built: Path | None, gpu_ready: bool, toolchain_ready: bool, build: bool,
                     verbose: bool) -> Check:
    name = "kernel extension"
    if built is None and not toolchain_ready:
        return Check(name, FAIL, "not built, and cannot be built here (see the rows above)",
                     "fix the nvcc / CUTLASS / ninja rows, then run `mla-backend doctor --build`")
    if not gpu_ready:
        # load_extension() refuses to load or build without a Hopper GPU and a CUDA torch.
        state = f"built ({built})" if built is not None else "not built"
        return Check(name, FAIL, f"{state}; building and loading it needs the torch, GPU and driver rows to pass")
    if built is None and not build:
        return Check(name, WARN, "not built yet (it is built on first use, about 2 minutes)",
                     "build it now: `mla-backend doctor --build`")
    start = time.monotonic()
    try:
        with _progress("building the CUDA extension" if built is None else None):
            library = _build.load_extension(verbose=verbose)
    except Exception as exc:  # noqa: BLE001 - any build or load failure is this row's result
        return Check(name, FAIL, f"{type(exc).__name__}: {exc}".strip()[:400],
                     "run `MLA_BACKEND_VERBOSE=1 mla-backend doctor --build` to see the compiler output")
    took = f"built in {time.monotonic() - start:.0f} s and loaded" if built is None else "loaded"
    return Check(name, OK, f"{took}: {library}")


def _engine_checks() -> list[Check]:
    checks = []
    for engine in ENGINES.values():
        version = _version(engine.name)
        status, words = engine_verdict(engine.name, version)
        verified = engine.verified(version) is not None
        checks.append(Check(engine.label, status, words, None if verified else engine.install_hint()))
    for engine in ENGINES.values():
        if _version(engine.name) is not None:
            checks.append(_plugin_check(engine.label, engine.plugin_group))
    return checks


def _plugin_check(label: str, group: str) -> Check:
    ours = [ep for ep in importlib.metadata.entry_points(group=group)
            if ep.value.split(".")[0].split(":")[0] == "mla_backend"]
    if ours:
        return Check(f"{label} plugin", OK, ", ".join(f"{ep.name} = {ep.value}" for ep in ours))
    return Check(f"{label} plugin", WARN, f"no `{group}` entry point of mla_backend is installed",
                 f"reinstall mla-backend in the Python environment of {label} (`pip install .` from the checkout)")


class _progress:
    """While a long step runs, print a line every `every` seconds so a build never looks hung."""

    def __init__(self, what: str | None, every: float = 15.0):
        self.what, self.every = what, every
        self._done = threading.Event()

    def __enter__(self):
        if self.what:
            self._start = time.monotonic()
            threading.Thread(target=self._tick, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._done.set()

    def _tick(self):
        while not self._done.wait(self.every):
            print(f"mla-backend doctor: {self.what}: {time.monotonic() - self._start:.0f} s", file=sys.stderr,
                  flush=True)
