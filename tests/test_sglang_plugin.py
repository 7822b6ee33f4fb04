"""The SGLang plugin on CPU, against the SGLang that CI installs (a venv of its own, see .ci/run): SGLang's own
loader finds and runs our entry point, `--attention-backend mla_backend` then parses, the backend factory and the
DeepSeek handler are registered under the name, and other SGLang versions are refused by name."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

pytest.importorskip("sglang", reason="SGLang is not installed (CI installs it in a venv of its own for these tests)")

from mla_backend.sglang import plugin

NAME = plugin.BACKEND_NAME


@pytest.fixture(scope="module")
def loaded():
    """SGLang's plugin loader run once, as launch_server runs it before parsing arguments."""
    from sglang.srt.plugins import load_plugins

    load_plugins()
    return True


def test_our_entry_point_is_in_sglangs_plugin_group():
    ours = [ep for ep in importlib.metadata.entry_points(group="sglang.srt.plugins") if ep.name == NAME]
    assert [ep.value for ep in ours] == ["mla_backend.sglang.plugin:register"]
    assert ours[0].load() is plugin.register


def test_the_server_argument_parser_takes_our_backend(loaded):
    import argparse

    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    args = parser.parse_args(["--model-path", "dummy", "--attention-backend", NAME, "--page-size", "64"])
    assert (args.attention_backend, args.page_size) == (NAME, 64)
    decode_only = parser.parse_args(["--model-path", "dummy", "--decode-attention-backend", NAME])
    assert decode_only.decode_attention_backend == NAME


def test_the_factory_and_the_deepseek_handler_are_registered(loaded):
    from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
    from sglang.srt.models.deepseek_common.attention_backend_handler import (
        AttentionBackendRegistry,
        handle_attention_flashmla,
    )
    from sglang.srt.server_args import CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS

    assert ATTENTION_BACKENDS[NAME] is plugin.create_backend
    # Without our entry, DeepSeek would take the Triton handler's dispatch for an unknown name.
    assert AttentionBackendRegistry.get_handler(NAME) is handle_attention_flashmla
    assert NAME in CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS


def test_registering_again_changes_nothing(loaded):
    from sglang.srt.server_args import ATTENTION_BACKEND_CHOICES, CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS

    plugin.register()
    plugin.register()
    assert ATTENTION_BACKEND_CHOICES.count(NAME) == 1
    assert CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS.count(NAME) == 1


def test_registering_imports_neither_the_backend_nor_cuda():
    # A fresh interpreter: other tests of the session import the backend themselves.
    check = ("import sys, torch; from sglang.srt.plugins import load_plugins; load_plugins(); "
             "from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS; "
             f"assert {NAME!r} in ATTENTION_BACKENDS; "
             "assert 'mla_backend.sglang.backend' not in sys.modules and 'mla_backend._build' not in sys.modules; "
             "assert not torch.cuda.is_initialized(); print('clean')")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "clean" in done.stdout, done.stderr[-3000:]


@pytest.mark.parametrize("version", ["0.5.17", "0.5.17.post1", "0.5.23"])
def test_verified_versions_pass(version):
    plugin.check_sglang_version(version)


@pytest.mark.parametrize("version", ["0.5.16", "0.5.18", "0.6.0", "weird"])
def test_other_versions_are_refused_with_the_verified_ones_named(version):
    with pytest.raises(RuntimeError, match=rf"verified with SGLang 0\.5\.17 .*; this is SGLang {version}"):
        plugin.check_sglang_version(version)


def test_the_installed_sglang_is_a_verified_one():
    plugin.check_sglang_version(importlib.metadata.version("sglang"))


def test_doctor_reports_the_installed_sglang_plugin():
    from mla_backend import doctor

    rows = {check.name: check for check in doctor._engine_checks()}
    assert rows["SGLang plugin"].status == doctor.OK
    assert "mla_backend.sglang.plugin:register" in rows["SGLang plugin"].value
