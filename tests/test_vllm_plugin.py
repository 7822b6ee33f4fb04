"""The vLLM plugin: vLLM's own loader finds our entry point, CUSTOM then resolves to our backend, registering is
idempotent and cheap (no CUDA, no mla_backend.ops), and an unverified vLLM is named with the verified ones."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

import vllm.plugins
from vllm.v1.attention.backends.registry import AttentionBackendEnum

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


@pytest.mark.parametrize("version", ["0.26.0", "0.26.3", "0.33.0", "0.33.1+cpu"])
def test_verified_versions_pass(version):
    plugin.check_vllm_version(version)


@pytest.mark.parametrize("version", ["0.25.2", "0.27.0", "0.34.0", "1.0.0", "dev"])
def test_unverified_version_is_named_with_the_verified_ones(version):
    with pytest.raises(RuntimeError) as error:
        plugin.check_vllm_version(version)
    message = str(error.value)
    assert f"this is vLLM {version}" in message
    assert "0.26.x (H100, TP 1 and 2)" in message and "0.33.x (CPU CI)" in message


def test_register_refuses_an_unverified_vllm(custom_unregistered, monkeypatch):
    monkeypatch.setattr(plugin.importlib.metadata, "version", lambda name: "0.27.0")
    with pytest.raises(RuntimeError, match="verified with vLLM 0.26.x"):
        plugin.register()
    assert not custom_unregistered.is_overridden()
