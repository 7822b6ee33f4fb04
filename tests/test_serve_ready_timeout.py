"""`mla-backend serve` waits long enough for a DeepSeek-V3 cold start: its readiness timeout (--ready-timeout, one
hour by default) is what it waits for /health and what vLLM's own engine start timeout is set to; a bad value is
refused by name."""
from __future__ import annotations

import pytest

from mla_backend.cli import main as cli
from mla_backend.cli import serve


class ExitedServer:
    """Stands in for the vLLM process: already exited, so serve stops at once."""

    returncode = 1

    def poll(self):
        return self.returncode


@pytest.fixture
def started(monkeypatch):
    """Runs `mla-backend serve` up to starting vLLM; records the environment vLLM got and how long serve waited."""
    seen = {}
    monkeypatch.setattr(serve, "preflight", lambda: 0)
    monkeypatch.delenv(serve.VLLM_READY_TIMEOUT_ENV, raising=False)

    def popen(command, env=None):
        seen["env"] = env
        return ExitedServer()

    def wait(base_url, server, timeout):
        seen["timeout"] = timeout
        return False

    monkeypatch.setattr(serve.subprocess, "Popen", popen)
    monkeypatch.setattr(serve, "wait_until_ready", wait)
    return seen


def test_the_default_outlasts_a_deepseek_v3_cold_start_and_vllm_waits_as_long(started):
    assert cli.main(["serve", "some/model", "--once"]) == 1
    assert started["timeout"] == serve.DEFAULT_READY_TIMEOUT_S >= 3600
    assert started["env"][serve.VLLM_READY_TIMEOUT_ENV] == str(serve.DEFAULT_READY_TIMEOUT_S)


@pytest.mark.parametrize("flag", ["--ready-timeout", "--timeout"])
def test_the_flag_sets_both(started, flag):
    cli.main(["serve", "some/model", "--once", flag, "7200"])
    assert started["timeout"] == 7200 and started["env"][serve.VLLM_READY_TIMEOUT_ENV] == "7200"


def test_a_vllm_timeout_set_by_the_user_is_kept(started, monkeypatch):
    monkeypatch.setenv(serve.VLLM_READY_TIMEOUT_ENV, "900")
    cli.main(["serve", "some/model", "--once"])
    assert started["env"][serve.VLLM_READY_TIMEOUT_ENV] == "900"


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_timeout_that_is_not_positive_is_refused(started, capsys, value):
    assert cli.main(["serve", "some/model", "--ready-timeout", value]) == 2
    assert f"--ready-timeout: expected a positive number of seconds, got {float(value)}" in capsys.readouterr().err
    assert "env" not in started
