"""The vLLM plugin: vLLM's own loader finds our entry point, CUSTOM then resolves to our backend, registering is
idempotent and cheap (no CUDA, no mla_backend.ops), and in an unverified vLLM (or when registering fails) the
plugin warns and leaves CUSTOM unregistered while vLLM loads its plugins and resolves its own backends as before."""
from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

import vllm.plugins
from vllm.v1.attention.backends.registry import AttentionBackendEnum

from mla_backend import engines
from mla_backend.vllm import plugin

ENTRY_POINT = "mla_backend.vllm.plugin:register"


@pytest.fixture
def custom_unregistered(monkeypatch):
    AttentionBackendEnum.CUSTOM.clear_override()
    monkeypatch.setattr(vllm.plugins, "plugins_loaded", False)
    yield AttentionBackendEnum.CUSTOM
    AttentionBackendEnum.CUSTOM.clear_override()


def installed_entry_points():
    try:
        dist = importlib.metadata.distribution("mla-backend")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mla-backend is not installed (pip install .), so no entry point is registered")
    return [ep for ep in dist.entry_points if ep.group == "vllm.general_plugins"]


def test_installed_package_declares_the_general_plugin():
    assert [(ep.name, ep.value) for ep in installed_entry_points()] == [("mla_backend", ENTRY_POINT)]


def test_vllms_loader_registers_custom_as_our_backend(custom_unregistered, monkeypatch):
    installed_entry_points()
    monkeypatch.setenv("VLLM_PLUGINS", "mla_backend")
    vllm.plugins.load_general_plugins()
    from mla_backend.vllm.backend import MLABackend

    assert custom_unregistered.get_path() == plugin.BACKEND_PATH
    assert custom_unregistered.get_class() is MLABackend


def test_register_is_idempotent(custom_unregistered):
    plugin.register()
    plugin.register()
    assert custom_unregistered.get_path() == plugin.BACKEND_PATH


def test_register_touches_neither_cuda_nor_our_ops():
    code = (
        "import sys, torch\n"
        "from mla_backend.vllm import plugin\n"
        "plugin.register()\n"
        "heavy = ('mla_backend.ops', 'mla_backend._build', 'mla_backend.vllm.backend')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert not torch.cuda.is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def vllm_version(monkeypatch):
    """Makes importlib.metadata report this vLLM version (as an upgraded vLLM would), for the plugin only."""
    monkeypatch.setattr(engines, "_warned", set())
    real = importlib.metadata.version

    def set_version(version):
        monkeypatch.setattr(engines.importlib.metadata, "version",
                            lambda name: version if name == "vllm" else real(name))

    return set_version


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("mla_backend")]


def test_an_unverified_vllm_keeps_working_without_custom(custom_unregistered, monkeypatch, vllm_version, caplog):
    """After `pip install -U vllm`: vLLM's own plugin loading must not raise, and vLLM's backends still resolve."""
    installed_entry_points()
    vllm_version("0.34.0")
    monkeypatch.delenv("VLLM_PLUGINS", raising=False)
    vllm.plugins.load_general_plugins()  # what every vLLM process runs at startup
    assert not custom_unregistered.is_overridden()
    assert AttentionBackendEnum.TRITON_MLA.get_class().get_name() == "TRITON_MLA"
    assert AttentionBackendEnum.FLASHMLA.get_class().get_name() == "FLASHMLA"
    (warning,) = warnings_of(caplog)
    assert "this is vLLM 0.34.0" in warning and "0.26.x (H100, TP 1 and 2; H200, TP 1), 0.33.x (CPU CI)" in warning
    assert "pip install vllm==0.26.0" in warning and "VLLM_PLUGINS" in warning
    # Asking for CUSTOM anyway gives vLLM's own error; the warning above, in the same process's log, says why.
    with pytest.raises(ValueError, match="Backend CUSTOM must be registered before use"):
        custom_unregistered.get_class()
    assert "Backend CUSTOM must be registered before use" in warning


def test_a_failure_inside_registration_is_a_warning(custom_unregistered, monkeypatch, caplog):
    def broken(*args):
        raise TypeError("register_backend() changed")

    monkeypatch.setattr(engines, "_warned", set())
    monkeypatch.setattr("vllm.v1.attention.backends.registry.register_backend", broken)
    plugin.register()
    assert not custom_unregistered.is_overridden()
    (warning,) = warnings_of(caplog)
    assert "registering its vLLM backend failed" in warning and "TypeError: register_backend() changed" in warning


def test_the_installed_vllm_is_a_verified_one():
    assert engines.ENGINES["vllm"].verified(importlib.metadata.version("vllm")) is not None
