"""The SGLang plugin on CPU, against the SGLang that CI installs (a venv of its own, see .ci/run): SGLang's own
loader finds and runs our entry point, `--attention-backend mla_backend` then parses, the backend factory is
registered under the name (and registers the DeepSeek handler when SGLang calls it), loading the plugin imports
neither our backend nor SGLang's model code and initialises no CUDA, and in other SGLang versions the plugin
registers nothing and warns, while SGLang loads its plugins and parses its own backends as before."""
from __future__ import annotations

import importlib.metadata
import json
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


def test_the_factory_is_registered_and_registers_the_deepseek_handler(loaded, monkeypatch):
    from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
    from sglang.srt.models.deepseek_common.attention_backend_handler import (
        AttentionBackendRegistry,
        handle_attention_flashmla,
    )
    from sglang.srt.server_args import CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS

    from mla_backend.sglang import backend

    assert ATTENTION_BACKENDS[NAME] is plugin.create_backend
    assert NAME in CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS
    monkeypatch.setitem(AttentionBackendRegistry._handlers, NAME, None)
    monkeypatch.setattr(backend, "MLABackend", lambda runner: ("built", runner))
    # SGLang builds the backend (ModelRunner.init_attention_backend) before the model's first forward reads the
    # handler (DeepseekV2AttentionMLA.dispatch_attn_forward_method).
    assert plugin.create_backend("runner") == ("built", "runner")
    # Without it, DeepSeek would take the Triton handler's dispatch for an unknown name.
    assert AttentionBackendRegistry.get_handler(NAME) is handle_attention_flashmla


def test_deepseeks_absorbed_path_hands_our_backend_the_rope_columns_apart(loaded, monkeypatch):
    from sglang.srt.models.deepseek_common import utils as deepseek_utils
    from sglang.srt.models.deepseek_common.attention_forward_methods import forward_mla

    from mla_backend.sglang import backend

    monkeypatch.setattr(deepseek_utils, "FORWARD_ABSORB_CORE_ATTENTION_BACKENDS",
                        [n for n in deepseek_utils.FORWARD_ABSORB_CORE_ATTENTION_BACKENDS if n != NAME])
    monkeypatch.setattr(forward_mla, "FORWARD_ABSORB_CORE_ATTENTION_BACKENDS",
                        deepseek_utils.FORWARD_ABSORB_CORE_ATTENTION_BACKENDS)
    monkeypatch.setattr(backend, "MLABackend", lambda runner: runner)
    plugin.create_backend("runner")
    plugin.create_backend("runner")
    # forward_mla.forward_absorb_core reads the list it imported: the same object, now naming us once
    assert forward_mla.FORWARD_ABSORB_CORE_ATTENTION_BACKENDS.count(NAME) == 1


def test_without_deepseeks_list_the_backend_is_built_and_the_cost_logged(loaded, monkeypatch, caplog):
    from sglang.srt.models.deepseek_common import utils as deepseek_utils

    from mla_backend.sglang import backend

    monkeypatch.delattr(deepseek_utils, "FORWARD_ABSORB_CORE_ATTENTION_BACKENDS")
    monkeypatch.setattr(backend, "MLABackend", lambda runner: ("built", runner))
    assert plugin.create_backend("runner") == ("built", "runner")
    assert any("concatenate q and k" in r.getMessage() for r in caplog.records if r.name == plugin.logger.name)


def test_registering_again_changes_nothing(loaded):
    from sglang.srt.server_args import ATTENTION_BACKEND_CHOICES, CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS

    plugin.register()
    plugin.register()
    assert ATTENTION_BACKEND_CHOICES.count(NAME) == 1
    assert CHUNKED_PREFIX_CACHE_SUPPORTED_ATTENTION_BACKENDS.count(NAME) == 1


# Run in a fresh interpreter set up as `python -m sglang.launch_server` (0.5.17 and 0.5.23) is when it calls
# load_plugins(): sglang.srt.server_args already imported. Prints what loading the plugins imported and, if CUDA was
# not initialised before, where it first was during loading (a spy on torch.cuda._lazy_init, through which every
# torch.cuda query and every CUDA tensor's creation initialises CUDA).
LOAD_PLUGINS_LIKE_LAUNCH_SERVER = r"""
import json, sys, traceback
import torch
import sglang.srt.server_args  # launch_server.py's own import, before it loads plugins
cuda_before = torch.cuda.is_initialized()
first_init = []
real_lazy_init = torch.cuda._lazy_init

def spy():
    if not torch.cuda.is_initialized() and not first_init:
        stack = traceback.extract_stack()[:-1]
        imports = [f"{f.filename}:{f.lineno}" for f in stack if f.name == "<module>"]  # the import chain
        where = "".join(traceback.format_list(stack[-4:]))
        first_init.append("  imported through " + " -> ".join(imports) + "\n" + where)
    return real_lazy_init()

torch.cuda._lazy_init = spy
imported_before = set(sys.modules)
from sglang.srt.plugins import load_plugins
load_plugins()
from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
print(json.dumps({"registered": %r in ATTENTION_BACKENDS, "cuda_before": cuda_before,
                  "cuda_after": torch.cuda.is_initialized(), "first_init": first_init,
                  "imported": sorted(set(sys.modules) - imported_before)}))
"""
# What loading the plugin must not import: our backend and everything that leads to the kernel, and SGLang's model
# code (the DeepSeek handler module, registered when the backend is built).
NOT_AT_LOAD = ("mla_backend.sglang.backend", "mla_backend.ops", "mla_backend._build", "mla_backend.plan_buffers",
               "sglang.srt.models.deepseek_common.attention_backend_handler")


def test_registering_imports_neither_the_backend_nor_cuda():
    done = subprocess.run([sys.executable, "-c", LOAD_PLUGINS_LIKE_LAUNCH_SERVER % NAME], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["registered"], f"load_plugins() did not register {NAME!r}; its log:\n{done.stderr[-3000:]}"
    offending = [m for m in report["imported"] if m in NOT_AT_LOAD]
    assert not offending, f"loading the plugin imported {offending}"
    if not report["cuda_before"]:  # else SGLang's own imports initialised CUDA, and there is nothing to check
        assert not report["cuda_after"] and not report["first_init"], \
            "loading the plugin initialised CUDA (or tried to), first:\n" + "".join(report["first_init"])


# A fresh interpreter whose importlib.metadata reports SGLang 0.5.99 (as after `pip install -U sglang`) runs
# SGLang's own plugin loading and its server argument parser, as launch_server does.
LOAD_PLUGINS_IN_AN_UNVERIFIED_SGLANG = r"""
import argparse, contextlib, importlib.metadata, io, json
real_version = importlib.metadata.version
importlib.metadata.version = lambda name: "0.5.99" if name == "sglang" else real_version(name)
from sglang.srt.plugins import load_plugins
load_plugins()
from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
from sglang.srt.server_args import ServerArgs

def parse(backend):
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            return parser.parse_args(["--model-path", "m", "--attention-backend", backend]).attention_backend
        except SystemExit:
            return stderr.getvalue()

print(json.dumps({"registered": %r in ATTENTION_BACKENDS, "ours": parse(%r), "flashmla": parse("flashmla")}))
"""


def test_an_unverified_sglang_keeps_working_and_says_why_mla_backend_is_refused():
    done = subprocess.run([sys.executable, "-c", LOAD_PLUGINS_IN_AN_UNVERIFIED_SGLANG % (NAME, NAME)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["registered"]
    assert report["flashmla"] == "flashmla"
    assert f"invalid choice: '{NAME}'" in report["ours"]
    # SGLang's own "Failed to execute general plugin" (a traceback) is not there: ours is one warning that says why.
    assert "Failed to execute general plugin" not in done.stderr
    assert done.stderr.count("this is SGLang 0.5.99") == 1
    assert "0.5.17 (H200, TP 1), 0.5.23 (CPU CI)" in done.stderr and "SGLANG_PLUGINS" in done.stderr
    assert f"invalid choice: '{NAME}'" in done.stderr.split("this is SGLang 0.5.99")[1]


def test_a_failure_inside_registration_is_a_warning(monkeypatch, caplog):
    from sglang.srt.layers.attention import attention_registry

    from mla_backend import engines

    def broken(name):
        raise TypeError("register_attention_backend() changed")

    monkeypatch.setattr(engines, "_warned", set())
    monkeypatch.setattr(attention_registry, "register_attention_backend", broken)
    plugin.register()
    warnings = [r.getMessage() for r in caplog.records if r.name == plugin.logger.name]
    assert len(warnings) == 1 and "TypeError: register_attention_backend() changed" in warnings[0]


def test_the_installed_sglang_is_a_verified_one():
    from mla_backend.engines import ENGINES

    assert ENGINES["sglang"].verified(importlib.metadata.version("sglang")) is not None


def test_doctor_reports_the_installed_sglang_plugin():
    from mla_backend.cli import doctor

    rows = {check.name: check for check in doctor._engine_checks()}
    assert rows["SGLang plugin"].status == doctor.OK
    assert "mla_backend.sglang.plugin:register" in rows["SGLang plugin"].value
