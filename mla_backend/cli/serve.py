"""`mla-backend serve`: `vllm serve` with our attention backend, then one OpenAI request as a check.

    mla-backend serve [MODEL] [--config FILE] [--once] [--dry-run] [vllm serve options...]

The vLLM command is `vllm serve MODEL --attention-backend CUSTOM --block-size 64 [--config FILE] [options]`
(`python -m vllm.entrypoints.cli.main serve ...` where this Python has no `vllm` script). Without a MODEL
(and no `model:` in the config file) it serves the tiny DeepSeek-V2-shaped checkpoint of
mla_backend.models.tiny_model, generated locally on first use. Once the server is up it sends one streamed chat
request (a completion where the model has no chat template) and prints the reply and the decode speed;
then it keeps serving (`--once`: stops the server and exits).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ..engines import ENGINES
from ..kernel_facts import BLOCK_SIZE, is_hopper, parse_capability
from ..models import tiny_model
from . import doctor, terminal

BACKEND = "CUSTOM"
DEFAULT_PORT = 8000
TINY_SERVED_NAME = tiny_model.NAME
DEFAULT_PROMPT = "In one sentence: what does multi-head latent attention store in its KV cache?"
# Options this wrapper sets itself; a different value is refused rather than silently overridden.
FIXED_OPTIONS = {"--attention-backend": BACKEND, "--block-size": str(BLOCK_SIZE)}
# How long to wait for the server to answer /health. A cold start of DeepSeek-V3 (~690 GB of weights read from
# disk, then compiled and captured) can outlast vLLM's own 600 s engine start timeout, so the server is started
# with VLLM_ENGINE_READY_TIMEOUT_S set to the same value (unless it is set already).
DEFAULT_READY_TIMEOUT_S = 3600
VLLM_READY_TIMEOUT_ENV = "VLLM_ENGINE_READY_TIMEOUT_S"


@dataclass
class Plan:
    """What to run: the vLLM command line and where its OpenAI endpoint will be."""

    command: list[str]
    model: str | None  # None: the model comes from the config file
    tiny: bool  # the embedded default model
    base_url: str


def vllm_command() -> list[str]:
    """The `vllm` script of this Python environment, else `python -m vllm.entrypoints.cli.main`.

    Only this environment's vLLM can load this environment's mla_backend plugin, so a `vllm` on PATH that
    belongs to another environment is not used.
    """
    script = Path(sys.executable).parent / "vllm"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "vllm.entrypoints.cli.main"]


def read_config(path: str | None) -> dict:
    """The top-level keys of a `vllm serve --config` YAML file ({} without one)."""
    if path is None:
        return {}
    import yaml

    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a vLLM config file is a mapping of option names to values")
    return config


def plan(model: str | None, config_path: str | None, vllm_args: list[str], host: str | None = None,
         port: int | None = None) -> Plan:
    """The vLLM command for these arguments (nothing is generated or started)."""
    _refuse_conflicts(vllm_args)
    config = {k.replace("_", "-"): v for k, v in read_config(config_path).items()}
    tiny = model is None and "model" not in config
    if tiny:
        model = str(tiny_model.default_dir())
    command = [*vllm_command(), "serve"]
    if model is not None:
        command.append(model)
    if config_path is not None:
        command += ["--config", config_path]
    command += ["--attention-backend", BACKEND, "--block-size", str(BLOCK_SIZE)]
    if host is not None:
        command += ["--host", host]
    if port is not None:
        command += ["--port", str(port)]
    if tiny and not any(a.split("=")[0] in ("--served-model-name", "--served_model_name") for a in vllm_args):
        command += ["--served-model-name", TINY_SERVED_NAME]
    command += vllm_args
    host = host or config.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    port = port or int(config.get("port") or DEFAULT_PORT)
    return Plan(command=command, model=model, tiny=tiny, base_url=f"http://{_url_host(host)}:{port}")


def main(model: str | None, config_path: str | None, vllm_args: list[str], host: str | None, port: int | None,
         dry_run: bool, once: bool, check: bool, prompt: str, max_tokens: int,
         timeout: float = DEFAULT_READY_TIMEOUT_S) -> int:
    try:
        if not timeout > 0:
            raise ValueError(f"--ready-timeout: expected a positive number of seconds, got {timeout}")
        p = plan(model, config_path, vllm_args, host, port)
    except (OSError, ValueError) as exc:
        terminal.say(f"mla-backend serve: {exc}", sys.stderr)
        return 2
    if dry_run:
        print(_shell_join(p.command))
        if p.tiny:
            print(f"# {p.model}: the default model (tiny DeepSeek-V2 shape, random weights), generated on first run")
        return 0
    rc = preflight()
    if rc != 0:
        return rc
    if p.tiny:
        terminal.say(f"mla-backend serve: default model: tiny DeepSeek-V2-shaped checkpoint (random weights, replies "
                     f"are noise) in {p.model}")
        tiny_model.ensure(Path(p.model))
    print(f"mla-backend serve: {_shell_join(p.command)}", flush=True)
    server = subprocess.Popen(p.command, env=server_env(timeout))
    try:
        if not wait_until_ready(p.base_url, server, timeout):
            return _stop(server, failed=True)
        if check:
            try:
                result = ask(p.base_url, prompt, max_tokens, ignore_eos=p.tiny)
            except (OSError, ValueError, KeyError, IndexError) as exc:  # refused, bad JSON, unexpected shape
                terminal.say(f"mla-backend serve: the check request failed: {type(exc).__name__}: {exc}", sys.stderr)
                if once:
                    return _stop(server, failed=True)
            else:
                print(result.report(), flush=True)
        if once:
            return _stop(server)
        terminal.say(f"mla-backend serve: serving {p.base_url}/v1 (Ctrl-C to stop)")
        return server.wait()
    except KeyboardInterrupt:
        return _stop(server)


def preflight() -> int:
    """0 if this machine can serve with our kernel; else says what is missing (running doctor) and returns 1.

    The extension is built here, with progress, rather than silently inside a vLLM worker.
    """
    hopper = _hopper_listed()
    if hopper is not True:
        found = "nvidia-smi lists no Hopper GPU" if hopper is False else "no NVIDIA GPU found: no nvidia-smi"
        terminal.say(f"mla-backend serve: no NVIDIA Hopper GPU on this machine ({found}). The mla_backend kernel "
                     "runs only on Hopper (H100, H200), so vLLM is not started. What `mla-backend doctor` finds:\n")
        doctor.main()
        return 1
    # A separate process, so this one never holds a CUDA context beside the server's.
    rc = subprocess.call([sys.executable, "-m", "mla_backend.cli", "doctor", "--build"])
    if rc != 0:
        terminal.say("mla-backend serve: fix the FAIL rows above, then run it again", sys.stderr)
        return 1
    vllm = ENGINES["vllm"]
    if find_spec("vllm") is None:
        terminal.say(f"mla-backend serve: vLLM is not installed in this Python ({sys.executable}); "
                     f"{vllm.install_hint()}", sys.stderr)
        return 1
    version = importlib.metadata.version("vllm")
    if vllm.verified(version) is None:
        terminal.say(f"mla-backend serve: this is vLLM {version}, where mla_backend's plugin does not register its "
                     f"backend; {vllm.install_hint()}", sys.stderr)
        return 1
    return 0


def server_env(ready_timeout: float) -> dict[str, str]:
    """This process's environment, with vLLM's engine start timeout as long as ours unless it is set already."""
    env = dict(os.environ)
    env.setdefault(VLLM_READY_TIMEOUT_ENV, str(int(ready_timeout)))
    return env


def wait_until_ready(base_url: str, server: subprocess.Popen, timeout: float) -> bool:
    """Poll /health until it answers 200; False if the server exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            terminal.say(f"mla-backend serve: vLLM exited with code {server.returncode} before it was ready",
                         sys.stderr)
            return False
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    terminal.say(f"mla-backend serve: vLLM was not ready after {timeout:.0f} s (--ready-timeout sets how long to "
                 "wait)", sys.stderr)
    return False


@dataclass
class Answer:
    model: str
    endpoint: str
    prompt: str
    text: str
    completion_tokens: int | None
    ttft_s: float | None
    decode_s: float | None  # from the first streamed token to the last

    @property
    def decode_tokens_per_s(self) -> float | None:
        if not self.completion_tokens or self.completion_tokens < 2 or not self.decode_s:
            return None
        return (self.completion_tokens - 1) / self.decode_s

    def report(self) -> str:
        speed = self.decode_tokens_per_s
        stats = [f"{self.completion_tokens} tokens" if self.completion_tokens is not None else "token count unknown"]
        if self.ttft_s is not None:
            stats.append(f"time to first token {self.ttft_s:.3f} s")
        stats.append(f"decode {speed:.1f} tokens/s (one request)" if speed else "decode speed n/a (< 2 tokens)")
        return "\n".join([
            f"model:  {self.model} ({self.endpoint})",
            f"prompt: {self.prompt}",
            f"reply:  {self.text!r}",
            f"speed:  {'; '.join(stats)}",
        ])


def ask(base_url: str, prompt: str, max_tokens: int, ignore_eos: bool = False, timeout: float = 300) -> Answer:
    """One greedy, streamed OpenAI request to the first served model: chat, or a completion without a chat
    template. ignore_eos (a vLLM extension) makes a random-weight model produce all max_tokens."""
    with urllib.request.urlopen(base_url + "/v1/models", timeout=30) as response:
        model = json.load(response)["data"][0]["id"]
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    if ignore_eos:
        body["ignore_eos"] = True
    try:
        return _stream(base_url, "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": prompt}]},
                       model, prompt, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 400:  # 400: no chat template; anything else is a real failure
            raise
    return _stream(base_url, "/v1/completions", {**body, "prompt": prompt}, model, prompt, timeout)


def _stream(base_url: str, endpoint: str, body: dict, model: str, prompt: str, timeout: float) -> Answer:
    request = urllib.request.Request(base_url + endpoint, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.monotonic()
    first = last = None
    pieces, tokens = [], None
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                tokens = chunk["usage"].get("completion_tokens")
            for choice in chunk.get("choices", []):
                piece = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
                if piece:
                    now = time.monotonic()
                    first = first if first is not None else now
                    last = now
                    pieces.append(piece)
    return Answer(model=model, endpoint=endpoint, prompt=prompt, text="".join(pieces), completion_tokens=tokens,
                  ttft_s=None if first is None else first - start,
                  decode_s=None if first is None else last - first)


def _stop(server: subprocess.Popen, failed: bool = False) -> int:
    """Stop the server like Ctrl-C would (SIGINT), then harder; 1 if failed, else 0."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 1 if failed else 0


def _hopper_listed() -> bool | None:
    """True/False: nvidia-smi lists a compute capability 9.x GPU or not; None: no nvidia-smi answer."""
    smi = doctor.nvidia_smi()
    if "error" in smi:
        return None
    return any(is_hopper(parse_capability(g["compute_cap"])) for g in smi["gpus"])


def _refuse_conflicts(vllm_args: list[str]) -> None:
    for i, arg in enumerate(vllm_args):
        key, _, value = arg.partition("=")
        key = key.replace("_", "-")
        if key in FIXED_OPTIONS:
            value = value or (vllm_args[i + 1] if i + 1 < len(vllm_args) else "")
            if value.upper() != FIXED_OPTIONS[key]:
                raise ValueError(f"{key} {value}: mla-backend serve always uses {key} {FIXED_OPTIONS[key]}; "
                                 "run `vllm serve` directly for anything else")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _shell_join(command: list[str]) -> str:
    return shlex.join(command)

