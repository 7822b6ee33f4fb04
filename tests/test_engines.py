"""mla_backend.engines, the one table of engine versions: the README's copy, CI's pins and the bundle recipes agree
with it, versions map to their rows, and a plugin registers in a verified engine only and never raises (no engine
needed: registration is a stand-in here; tests/test_*_plugin.py run it inside the real engines)."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from mla_backend import engines
from mla_backend.cli import bundle, doctor
from mla_backend.engines import ENGINES

REPO = Path(__file__).resolve().parent.parent


def readme_engine_rows() -> list[tuple[str, ...]]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Engine versions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) > 2, "README's Engine versions section has no table"
    return [tuple(cell.strip() for cell in row.strip("|").split("|")) for row in rows[2:]]


def expected_rows() -> list[tuple[str, ...]]:
    rows = []
    for engine in ENGINES.values():
        for release in engine.releases:
            version = release.install.split("==")[1]
            status = doctor.engine_verdict(engine.name, version)[0]
            recipe = f"`--recipe {release.bundle}`" if release.bundle else "-"
            rows.append((engine.label, engine.display(release), release.where, status,
                         f"`pip install {release.install}`", recipe))
    return rows


def test_the_readme_table_is_the_engines_table():
    assert readme_engine_rows() == expected_rows()


def test_every_release_installs_a_version_of_itself():
    for engine in ENGINES.values():
        for release in engine.releases:
            name, version = release.install.split("==")
            assert name == engine.name and engine.verified(version) is release


@pytest.mark.parametrize("engine, requirements", [("vllm", ".ci/vllm-cpu-requirements.txt"),
                                                  ("sglang", ".ci/sglang-cpu-requirements.txt")])
def test_ci_tests_the_release_the_table_says_it_does(engine, requirements):
    pins = re.findall(rf"^{engine}==(\S+)", (REPO / requirements).read_text(), flags=re.MULTILINE)
    assert len(pins) == 1
    release = ENGINES[engine].verified(pins[0])
    assert release is not None and release.where == engines.CPU_ONLY and release.install == f"{engine}=={pins[0]}"


def test_bundle_recipes_are_the_tables_and_pin_its_release():
    recipes = engines.bundle_recipes()
    assert set(recipes) == set(bundle.RECIPES)
    for name, (_engine, release) in recipes.items():
        assert release.install in bundle.RECIPES[name].pins()
    assert bundle.default_recipe() == ENGINES["vllm"].recommended().bundle == "vllm-0.26.0"


@pytest.mark.parametrize("engine, version, release", [
    ("vllm", "0.26.0", "0.26"), ("vllm", "0.26.3", "0.26"), ("vllm", "0.33.1+cpu", "0.33"), ("vllm", "0.27.0", None),
    ("vllm", "0.260.0", None), ("vllm", "1.0.0", None), ("vllm", "dev", None), ("vllm", None, None),
    ("sglang", "0.5.17", "0.5.17"), ("sglang", "0.5.17.post1", "0.5.17"), ("sglang", "0.5.23", "0.5.23"),
    ("sglang", "0.5.18", None), ("sglang", "0.5.170", None), ("sglang", "0.5", None), ("sglang", "weird", None),
])
def test_versions_map_to_their_row(engine, version, release):
    row = ENGINES[engine].verified(version)
    assert (row.release if row else None) == release


@pytest.mark.parametrize("engine, opt_out, refusal", [
    ("vllm", "VLLM_PLUGINS", "Backend CUSTOM must be registered before use"),
    ("sglang", "SGLANG_PLUGINS", "invalid choice: 'mla_backend'"),
])
def test_the_unverified_warning_says_what_happens_how_to_pin_and_how_to_opt_out(engine, opt_out, refusal):
    table = ENGINES[engine]
    message = table.unverified_reason("9.9.9")
    assert f"this is {table.label} 9.9.9" in message and table.verified_list() in message
    assert f"pip install {table.recommended().install}" in message
    assert refusal in message and opt_out in message and "pip uninstall mla-backend" in message


def test_verified_lists_name_where():
    assert ENGINES["vllm"].verified_list() == "0.26.x (H100, TP 1 and 2; H200, TP 1), 0.33.x (CPU CI)"
    assert ENGINES["sglang"].verified_list() == "0.5.17 (H200, TP 1), 0.5.23 (CPU CI)"


# --- register_plugin: what both plugins run -----------------------------------------------------------------


@pytest.fixture
def engine_version(monkeypatch):
    """Sets the version importlib.metadata reports for the engines (the plugins read it there)."""
    monkeypatch.setattr(engines, "_warned", set())

    def set_version(version):
        def fake(name):
            if isinstance(version, Exception):
                raise version
            return version

        monkeypatch.setattr(engines.importlib.metadata, "version", fake)

    return set_version


@pytest.fixture
def logger(caplog):
    caplog.set_level(logging.DEBUG, logger="test.plugin")
    return logging.getLogger("test.plugin")


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_verified_engine_registers_without_a_word(engine_version, logger, caplog):
    engine_version("0.26.1")
    calls = []
    assert engines.register_plugin("vllm", lambda: calls.append(1), logger) is True
    assert calls == [1] and warnings_of(caplog) == []


@pytest.mark.parametrize("engine, version", [("vllm", "0.27.0"), ("sglang", "0.5.18")])
def test_an_unverified_engine_gets_one_warning_and_no_registration(engine_version, logger, caplog, engine, version):
    engine_version(version)
    calls = []
    for _ in range(3):  # vLLM runs plugins more than once in some processes
        assert engines.register_plugin(engine, lambda: calls.append(1), logger) is False
    assert calls == []
    assert warnings_of(caplog) == [ENGINES[engine].unverified_reason(version)]


def test_a_failing_registration_is_a_warning_not_an_exception(engine_version, logger, caplog):
    engine_version("0.5.17")

    def broken():
        raise ImportError("cannot import name 'register_attention_backend'")

    assert engines.register_plugin("sglang", broken, logger) is False
    (warning,) = warnings_of(caplog)
    assert "registering its SGLang backend failed in SGLang 0.5.17" in warning
    assert "ImportError: cannot import name 'register_attention_backend'" in warning
    assert "SGLANG_PLUGINS" in warning
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)  # the traceback, for --log-level


def test_an_engine_without_metadata_is_a_warning_not_an_exception(engine_version, logger, caplog):
    engine_version(engines.importlib.metadata.PackageNotFoundError("vllm"))
    assert engines.register_plugin("vllm", lambda: None, logger) is False
    assert "registering its vLLM backend failed in vLLM (version unknown)" in warnings_of(caplog)[0]
