"""integration_tests/e2e_common.py stops the servers it started when its driver is killed (`timeout` sends
SIGTERM), refuses to start one on a GPU another process still holds, and a server that cannot start is one
backend's failure, not the run's. On CPU, with the stand-in server of tests/fake_engine_server.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import e2e_common

FAKE = Path(__file__).resolve().parent / "fake_engine_server.py"
INTEGRATION = Path(e2e_common.__file__).resolve().parent

DRIVER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {integration!r})
    import e2e_common
    port = e2e_common.free_port()
    server = e2e_common.Server([sys.executable, {fake!r}, "--port", str(port), "--flavor", "flashmla",
                                "--child-pid-file", {child!r}], dict(os.environ), __import__("pathlib").Path({log!r}),
                               port, lambda s: e2e_common.SGLANG_READY in s.log_path.read_text())
    server.wait(60)
    print(server.proc.pid, flush=True)
    time.sleep(600)
""")


def gone(pid: int, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of this test's process counts as gone
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_killed_driver_stops_its_server_and_the_servers_children(tmp_path, sig):
    child_file = tmp_path / "child.pid"
    script = DRIVER.format(integration=str(INTEGRATION), fake=str(FAKE), child=str(child_file),
                           log=str(tmp_path / "server.log"))
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(driver.stdout.readline())
        child_pid = int(child_file.read_text())
        driver.send_signal(sig)
        assert driver.wait(timeout=120) == 128 + sig
        assert gone(server_pid), "the server outlived its driver"
        assert gone(child_pid), "the server's child outlived the driver"
    finally:
        driver.kill()


def test_a_gpu_held_by_another_process_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(e2e_common, "query_memory_mib", lambda: 108_500)
    with pytest.raises(RuntimeError, match=r"108500 MiB in use .* another process holds it"):
        e2e_common.wait_for_free_gpu(timeout_s=0)


def test_no_nvidia_smi_means_nothing_to_wait_for(monkeypatch):
    monkeypatch.setattr(e2e_common, "query_memory_mib", lambda: None)
    e2e_common.wait_for_free_gpu(timeout_s=0)


def test_a_server_that_cannot_start_is_that_backends_error_and_the_others_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", SimpleNamespace(OpenAI=None))  # never reached: no server starts

    def start(backend):
        raise RuntimeError(f"{backend}: the GPU still has 108500 MiB in use")

    results, errors = e2e_common.serve_each(
        ("flashmla", "mla_backend"), "flashmla", start=start, exercise=lambda *a: {}, inspect_log=lambda log: {},
        done_file=lambda b: tmp_path / f"result_{b}.json", label="test", startup_timeout=1)
    assert results == {} and set(errors) == {"flashmla", "mla_backend"}
    assert "108500 MiB" in errors["mla_backend"]
