"""The engine versions mla_backend works with: the one table of them, and what it implies.

For each engine, the releases its adapter was verified with, where (a GPU box, or CPU tests in CI), what doctor
says about them, how to install one and which offline bundle recipe ships it. The plugins register only in these
releases; doctor, `mla-backend serve` and the offline bundle read them from here; the README's "Engine versions"
table is checked against this one (tests/test_engines.py). Bumping an engine is a row here, a line in that table,
and, for a new bundle, its recipe in cli/bundle.py and its pins in cli/bundles/.

Standard library only, and no engine import: the plugins read this while the engine starts.
"""
from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    """One engine release the adapter was verified with."""

    release: str          # vLLM: a release series ("0.26": 0.26.0, 0.26.1, ...); SGLang: a release ("0.5.17")
    where: str            # "H100, TP 1 and 2", or "CPU CI" where only CPU tests have run
    checked: str          # what was checked there, in a few words (doctor's row)
    install: str          # the pip requirement of the version to install
    bundle: str | None = None  # cli/bundle.py's recipe that ships it (`mla-backend bundle build --recipe`)

    @property
    def on_gpu(self) -> bool:
        return self.where != CPU_ONLY


@dataclass(frozen=True)
class Engine:
    name: str             # the distribution and module name
    label: str            # how people write it
    version_parts: int    # how many leading numbers of a version name its release: 2 for vLLM, 3 for SGLang
    plugin_group: str     # the entry point group the engine loads plugins from
    backend_flag: str     # how a user selects our backend in this engine
    unregistered: str     # what the engine says when that flag is given and our backend is not registered
    needed_for: str       # what needs this engine (doctor's fix when it is missing or unverified)
    plugins_env: str      # the variable that lists the plugins the engine loads (unset: all installed)
    optional: bool        # doctor: not installed is information only (neither the kernel nor `serve` needs it)
    releases: tuple[Release, ...]

    def release_of(self, version: str | None) -> str | None:
        """The part of `version` that releases are keyed by: vLLM '0.26.1' -> '0.26', SGLang '0.5.17.post1' ->
        '0.5.17'; None if it does not start with that many numbers."""
        match = re.match(r"\d+" + r"\.\d+" * (self.version_parts - 1) + r"(?!\d)", version or "")
        return match[0] if match else None

    def verified(self, version: str | None) -> Release | None:
        """The row `version` belongs to, or None when this version was never verified."""
        key = self.release_of(version)
        return next((r for r in self.releases if r.release == key), None)

    def display(self, release: Release) -> str:
        """How a release is written for people: '0.26.x' for a vLLM series, '0.5.17' for an SGLang release."""
        return f"{release.release}.x" if self.version_parts == 2 else release.release

    def verified_list(self) -> str:
        """'0.26.x (H100, TP 1 and 2), 0.33.x (CPU CI)'"""
        return ", ".join(f"{self.display(r)} ({r.where})" for r in self.releases)

    def recommended(self) -> Release:
        """The release to install: the first one verified on a GPU."""
        return next(r for r in self.releases if r.on_gpu)

    def install_hint(self) -> str:
        """How to get a verified release, for doctor's fix column and serve's refusal."""
        return (f"{self.needed_for} needs a verified {self.label}: `pip install {self.recommended().install}` "
                f"(verified: {self.verified_list()})")

    def unverified_reason(self, version: str) -> str:
        """The plugin's warning in a release it was not verified with: what happens, how to pin, how to opt out."""
        return (f"mla_backend: this is {self.label} {version}, and mla_backend's {self.label} backend is verified "
                f"with {self.label} {self.verified_list()} only, so it is not registered. {self._consequence()} "
                f"To use it, install a verified {self.label}: `pip install {self.recommended().install}`. "
                f"{self._opt_out()}")

    def failed_reason(self, version: str, exc: BaseException) -> str:
        """The plugin's warning when registering failed for any other reason."""
        return (f"mla_backend: registering its {self.label} backend failed in {self.label} {version} "
                f"({type(exc).__name__}: {exc}), so it is not registered. {self._consequence()} "
                f"Verified {self.label} versions: {self.verified_list()}. {self._opt_out()}")

    def _consequence(self) -> str:
        return (f"{self.label} runs as before without it, but `{self.backend_flag}` is not available "
                f"({self.unregistered}).")

    def _opt_out(self) -> str:
        return (f"To run {self.label} without mla_backend and without this warning, set {self.plugins_env} to the "
                f"plugins you want, leaving out mla_backend, or `pip uninstall mla-backend`.")


CPU_ONLY = "CPU CI"

ENGINES = {
    "vllm": Engine(
        name="vllm",
        label="vLLM",
        version_parts=2,
        plugin_group="vllm.general_plugins",
        backend_flag="--attention-backend CUSTOM",
        unregistered="vLLM stops with `Backend CUSTOM must be registered before use`",
        needed_for="`mla-backend serve` (and `--attention-backend CUSTOM`)",
        plugins_env="VLLM_PLUGINS",
        optional=False,
        releases=(
            Release("0.26", "H100, TP 1 and 2; H200, TP 1", "served with CUDA graphs vs FLASHMLA/TRITON_MLA",
                    "vllm==0.26.0", bundle="vllm-0.26.0"),
            Release("0.33", CPU_ONLY, "plugin, backend classes, configs", "vllm==0.33.0"),
        ),
    ),
    "sglang": Engine(
        name="sglang",
        label="SGLang",
        version_parts=3,
        plugin_group="sglang.srt.plugins",
        backend_flag="--attention-backend mla_backend",
        unregistered="SGLang's argument parser refuses it: `invalid choice: 'mla_backend'`",
        needed_for="`--attention-backend mla_backend`",
        plugins_env="SGLANG_PLUGINS",
        optional=True,
        releases=(
            # 0.5.17 is the newest SGLang that pins torch 2.11 (the GPU box's).
            Release("0.5.17", "H200, TP 1", "served with CUDA graphs vs flashmla/triton; adapter tests on GPU",
                    "sglang==0.5.17", bundle="sglang-0.5.17"),
            Release("0.5.23", CPU_ONLY, "plugin, argument parser, DeepSeek handler", "sglang==0.5.23"),
        ),
    ),
}


def bundle_recipes() -> dict[str, tuple[Engine, Release]]:
    """Every offline bundle recipe named in the table, with the engine release it ships."""
    return {r.bundle: (e, r) for e in ENGINES.values() for r in e.releases if r.bundle}


_warned: set[str] = set()


def register_plugin(engine_name: str, register: Callable[[], None], logger: logging.Logger) -> bool:
    """Runs an adapter's `register` if the installed engine is a verified release; never raises.

    Engines run their plugins in every process they start, and vLLM does not catch what a plugin raises: an
    exception here would stop the engine whatever model and backend it was asked for. So whatever goes wrong
    becomes one warning (once per process) that says why, how to pin and how to opt out, and our backend stays
    unregistered. Returns whether it was registered.
    """
    engine = ENGINES[engine_name]
    version = "(version unknown)"
    try:
        version = importlib.metadata.version(engine.name)
        if engine.verified(version) is None:
            _warn_once(logger, engine.unverified_reason(version))
            return False
        register()
        return True
    except Exception as exc:  # noqa: BLE001 - the engine must start whatever happened here
        logger.debug("mla_backend: registering with %s failed", engine.label, exc_info=True)
        _warn_once(logger, engine.failed_reason(version, exc))
        return False


def _warn_once(logger: logging.Logger, message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)
