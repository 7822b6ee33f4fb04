"""What the end-to-end serving tests of every engine share: the tiny checkpoint, the prompts, the OpenAI-client
helpers for decode speed, and the agreement measures (greedy common prefixes, teacher-forced logprob differences).

Each engine's driver (vllm_e2e.py, sglang_e2e.py) starts one server per attention backend, sends the same prompts
and hands its per-backend results here; a result is a dict with "completions" and "chat" (lists of (token ids,
logprobs) per prompt) and, when teacher forcing ran, "forced_completions" and "forced_chat".
"""
from __future__ import annotations

import atexit
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import host_cpus

MODEL_NAME = "tiny-deepseek-v2"
LM_HEAD_STD = 0.2          # peaked logits: see tiny_model.generate
GEN_TOKENS = 64
CHAT_TOKENS = 48
N_SHORT = 16
SPEED_PROMPT_CHARS = 2000
# decode_speed's rounds: the tiny model's step is host-bound, so one round's rate moves with the host (the same
# backend's 64-request rate read 35.3k and 47.6k tok/s in two H200 runs of 272 tokens a round). Several long rounds
# and their median (median_round) give the steady rate.
SPEED_TOKENS, SPEED_REPEATS = 1024, 5

WORDS = ("latent attention compresses keys and values into one low rank vector per token which the decode kernel "
         "reads from a paged cache while every query head attends to the same rows of shared memory").split()


def _text(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


# Lengths around page (64-token) boundaries, short and long; each prompt is BOS + one token per byte.
COMPLETION_PROMPTS = [_text(random.Random(i), n) for i, n in enumerate(
    [3, 20, 62, 63, 64, 65, 100, 126, 127, 128, 129, 190, 255, 256, 300, 400, 511, 512, 640, 700, 800, 1000,
     1023, 1100, 1300, 1500, 1700, 1900, 2047, 2100, 2500, 3000])]
CHAT_PROMPTS = [_text(random.Random(100 + i), n) for i, n in enumerate([10, 60, 130, 250, 500, 900, 1400, 2000])]


def checkpoint(directory: Path) -> Path:
    from mla_backend.models import tiny_model

    if not (directory / "DONE").is_file():
        tiny_model.generate(directory, lm_head_std=LM_HEAD_STD)
    return directory


class Server:
    """One engine server in a process group of its own, its output in `log`; `ready()` says when it serves.

    Its own process group keeps a Ctrl-C meant for the driver away from it, so nothing but `stop()` ends it: every
    server not yet stopped is stopped when the driver exits, also on SIGTERM or SIGHUP (`timeout` sends SIGTERM).
    Without that, a driver killed mid-run left its server holding 108 GB of an H200, and the next run's server
    came up with 1.8 GB free and died of OOM at its first long batch."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, port: int, ready: Callable[["Server"], bool]):
        self.base_url, self.log_path, self._ready = f"http://127.0.0.1:{port}", log, ready
        self.log = open(log, "w")
        self.log.write(" ".join(cmd) + "\n")
        self.log.flush()
        _stop_live_servers_on_exit()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _LIVE_SERVERS.add(self)

    def wait(self, timeout: float) -> float:
        """Seconds until ready; raises with the log's tail if the server exits or `timeout` passes first."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout and self.proc.poll() is None:
            if self._ready(self):
                return time.monotonic() - t0
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the server did not come up ({self.log_path}):\n{self.log_tail(6000)}")

    def log_tail(self, chars: int) -> str:
        """The last `chars` characters of the server's output (why it died, when it did)."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def pin(self, cores: dict) -> None:
        """Once up: every thread and process of this server onto host_cpus.choose's cores (`cores`)."""
        host_cpus.pin_started(cores, self.proc.pid)

    def stop(self) -> None:
        """Ctrl-C to the whole group (TP workers included), then harder; waits until the main process is gone."""
        for sig, grace in ((signal.SIGINT, 60), (signal.SIGTERM, 30), (signal.SIGKILL, 30)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers the main process left behind
        except ProcessLookupError:
            pass
        self.log.close()
        _LIVE_SERVERS.discard(self)


_LIVE_SERVERS: set[Server] = set()


def _stop_live_servers() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop()


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)   # unwinds the driver's `finally: server.stop()`; atexit stops the rest


def _stop_live_servers_on_exit() -> None:
    """Once per process: stop every live server at exit, and make SIGTERM/SIGHUP an exit (their default kills the
    process without running atexit). Only from the main thread, where Python lets a handler be installed."""
    if getattr(_stop_live_servers_on_exit, "done", False):
        return
    atexit.register(_stop_live_servers)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _exit_on_signal)
    _stop_live_servers_on_exit.done = True


# ------------------------------------------------------------------------- each engine's server, as users run it


OUR_BACKEND = {"sglang": "mla_backend", "vllm": "CUSTOM"}   # the --attention-backend that serves our kernel
SGLANG_READY = "The server is fired up and ready to roll"
SGLANG_GRAPHS_CAPTURED = re.compile(r"Capture [\w ]*decode CUDA graph end|Capture cuda graph end", re.IGNORECASE)
VLLM_GRAPHS_CAPTURED = "Graph capturing finished"


def engine_command(engine: str, python: str, model: Path, backend: str, port: int, *, context_length: int,
                   max_batch: int, served_name: str, tp: int = 1, mem_fraction: float = 0.85, seed: int = 0,
                   prefix_cache: bool = True, extra: list[str] | tuple = ()) -> list[str]:
    """`sglang.launch_server` or `vllm serve` with the engine's defaults (CUDA graphs on, default compilation),
    sized for `max_batch` requests at once of up to `context_length` tokens. Our backend gets the 64-token pages
    its kernel reads, which its user asks for; a built-in one runs at the page size its engine picks for it
    (SGLang: 64 for flashmla, 1 for flashinfer and triton; vLLM: per backend)."""
    batch, ctx = str(max_batch), str(context_length)
    if engine == "sglang":
        cmd = [python, "-m", "sglang.launch_server", "--model-path", str(model), "--attention-backend", backend,
               "--tp-size", str(tp), "--port", str(port), "--host", "127.0.0.1", "--dtype", "bfloat16",
               "--context-length", ctx, "--max-running-requests", batch,
               "--cuda-graph-max-bs-decode", batch, "--mem-fraction-static", str(mem_fraction),
               "--served-model-name", served_name, "--random-seed", str(seed)]
        return cmd + ([] if prefix_cache else ["--disable-radix-cache"]) + page_args(engine, backend) + list(extra)
    cmd = [python, "-m", "vllm.entrypoints.cli.main", "serve", str(model), "--attention-backend", backend,
           "--tensor-parallel-size", str(tp), "--port", str(port), "--host", "127.0.0.1", "--dtype", "bfloat16",
           "--max-model-len", ctx, "--max-num-seqs", batch,
           "--gpu-memory-utilization", str(mem_fraction), "--served-model-name", served_name, "--seed", str(seed)]
    return cmd + ([] if prefix_cache else ["--no-enable-prefix-caching"]) + page_args(engine, backend) + list(extra)


def page_args(engine: str, backend: str) -> list[str]:
    if backend != OUR_BACKEND[engine]:
        return []
    from mla_backend.kernel_facts import BLOCK_SIZE

    return ["--page-size" if engine == "sglang" else "--block-size", str(BLOCK_SIZE)]


def query_memory_mib() -> int | None:
    """GPU memory used (MiB), summed over the GPUs of CUDA_VISIBLE_DEVICES (all of them when unset), or None
    without nvidia-smi (no CUDA context in this process: the servers need the GPU). nvidia-smi numbers GPUs by PCI
    bus, like CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    cmd = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        cmd.append(f"--id={visible}")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
        return sum(int(line) for line in out.split())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def wait_for_free_gpu(limit_mib: int = 4096, timeout_s: float = 120) -> None:
    """Until a stopped server's workers have given their memory back: a server started before sizes its KV pool
    and graphs for what is left, or fails (seen on the H200: the next server came up with 19 of 140 GB free).
    Raises if the memory is still in use after `timeout_s`: another process holds the GPU, and a server started
    now would measure (or crash on) what that process left."""
    deadline = time.monotonic() + timeout_s
    while (used := query_memory_mib()) is not None and used > limit_mib:
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the GPU still has {used} MiB in use after {timeout_s:.0f} s (more than {limit_mib} "
                               "MiB): another process holds it (nvidia-smi names it); stop it and run again")
        time.sleep(2)


def start_engine_server(engine: str, command: Callable[[int], list[str]], log: Path,
                        pythonpath: Path | None = None, extra_env: dict[str, str] | None = None,
                        beside_others: bool = False) -> Server:
    """The server `command(port)` starts, on a free port, ready when the engine says so; started once the GPU's
    memory is back from the server before, unless `beside_others` (servers meant to share the GPU, each sized
    for its share). `pythonpath` goes in front of PYTHONPATH (modules the server imports from a test directory,
    such as a logits processor); `extra_env` is added to its environment."""
    if not beside_others:
        wait_for_free_gpu()
    port = free_port()
    env = {**os.environ, "VLLM_CACHE_ROOT": str(log.parent / f"vllm_cache_{log.stem}"), **(extra_env or {})}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])
    ready = (lambda s: SGLANG_READY in s.log_path.read_text()) if engine == "sglang" else health_ok
    return Server(command(port), env, log, port, ready)


def cuda_graphs_captured(engine: str, log: str) -> bool:
    if engine == "sglang":
        return bool(SGLANG_GRAPHS_CAPTURED.search(log))
    return VLLM_GRAPHS_CAPTURED in log


def vocabulary(model: Path) -> tuple[int, set[int]]:
    """(vocab_size, special ids to leave out of prompts) from the checkpoint's config files."""
    cfg = json.loads((model / "config.json").read_text())
    generation = model / "generation_config.json"
    special = set()
    for data in (cfg, json.loads(generation.read_text()) if generation.is_file() else {}):
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = data.get(key)
            special.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return int(cfg["vocab_size"]), special


def health_ok(server: Server) -> bool:
    try:
        with urllib.request.urlopen(server.base_url + "/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def serve_each(backends: tuple[str, ...], reference: str, start: Callable[[str], Server],
               exercise: Callable[..., dict], inspect_log: Callable[[str], dict], done_file: Callable[[str], Path],
               label: str, startup_timeout: float = 600,
               on_up: Callable[[Server], None] | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """Each backend's server in turn, the reference first: started, `on_up(server)` once it is up (if given),
    exercised through the OpenAI client as
    `exercise(client, backend, reference_result or None)`, stopped, its log inspected. Returns (results,
    errors); a backend that fails is recorded in errors and the others still run. A result already in
    done_file(backend) is reused, so a run cut short (a per-call time limit) resumes with the backends it has not
    finished."""
    from openai import OpenAI

    results, errors = {}, {}
    for backend in sorted(backends, key=lambda b: b != reference):
        done = done_file(backend)
        if done.is_file():
            results[backend] = json.loads(done.read_text())
            continue
        try:
            server = start(backend)
        except Exception as exc:  # e.g. the GPU still held by another process
            errors[backend] = f"{type(exc).__name__}: {exc}"[-4000:]
            print(f"[{label}] {backend} not started: {errors[backend]}", flush=True)
            continue
        try:
            startup = server.wait(startup_timeout)
            if on_up is not None:
                on_up(server)
            client = OpenAI(base_url=server.base_url + "/v1", api_key="none", timeout=600, max_retries=0)
            t0 = time.monotonic()
            result = exercise(client, backend, results.get(reference))
            result["startup_s"], result["requests_s"] = startup, time.monotonic() - t0
        except Exception as exc:  # one backend failing must not hide the others' results
            errors[backend] = f"{type(exc).__name__}: {exc}"[-4000:]
            print(f"[{label}] {backend} FAILED: {errors[backend]}", flush=True)
            continue
        finally:
            server.stop()
        result.update(inspect_log(server.log_path.read_text()))
        results[backend] = result
        done.write_text(json.dumps(result))
        print(f"[{label}] {backend}: up in {startup:.0f} s, requests {result['requests_s']:.0f} s, "
              f"decode tok/s {result.get('decode_tokens_per_s')}", flush=True)
    return results, errors


def summarize(results: dict, order: tuple[str, ...], reference: str, log_keys: tuple[str, ...]) -> dict:
    """The run's settings and errors, compare()'s measures, and each backend's `log_keys` side by side."""
    backends = {n: results["backends"][n] for n in order if n in results["backends"]}
    summary = {k: v for k, v in results.items() if k not in ("backends", "summary")}
    summary.update(compare(backends, reference))
    for key in log_keys:
        summary[key] = {n: r[key] for n, r in backends.items()}
    return summary


def driver_main(run, description: str, workdir: Path, backends: tuple[str, ...], modes: tuple[str, ...] = ()) -> int:
    """The command line of an engine's driver: `run(tp, workdir, [mode,] backends)`, summary printed, JSON kept."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=workdir)
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    if modes:
        parser.add_argument("--mode", choices=modes, default=modes[0])
    parser.add_argument("--backends", default=",".join(backends))
    args = parser.parse_args()
    chosen = tuple(args.backends.split(","))
    results = run(args.tp, args.workdir, args.mode, chosen) if modes else run(args.tp, args.workdir, chosen)
    print(json.dumps(results["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(results))
    return 0


def brief(summary: dict) -> dict:
    """The summary without the per-prompt prefix lists, for printing."""
    short = {k: v for k, v in summary.items() if k != "greedy"}
    short["greedy"] = {k: {n: v for n, v in g.items() if n != "prefixes"} for k, g in summary["greedy"].items()}
    return short


def parallel(fn, jobs: list[tuple]) -> list:
    """fn(*job) for every job, all sent at once; results in order."""
    with ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
        return list(pool.map(lambda args: fn(*args), jobs))


Trace = list[tuple[float, int]]   # (arrival time, completion tokens so far) of each streamed chunk of a request


def sse_lines(chunks) -> Iterator[str]:
    """The lines of a server-sent event stream given as byte chunks. Split at b"\n" only: vLLM writes generated
    text into its JSON unescaped, and text such as U+0085 or U+2028 is a line break to str.splitlines (and to
    httpx's iter_lines), which cut a chunk's JSON in two in the first vLLM serving run."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode()
    if pending:
        yield pending.rstrip(b"\r").decode()


def stream_one(http, model: str, prompt: str | list[int], max_tokens: int) -> Trace:
    """One greedy request streamed with usage in every chunk (both engines' `continuous_usage_stats`)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    trace = []
    with http.stream("POST", "completions", json=body) as response:
        response.raise_for_status()
        for line in sse_lines(response.iter_bytes()):
            if line.startswith("data: ") and line != "data: [DONE]":
                usage = json.loads(line[len("data: "):]).get("usage")
                if usage:
                    trace.append((time.perf_counter(), usage["completion_tokens"]))
    if not trace or trace[-1][1] != max_tokens:
        raise RuntimeError(f"asked for {max_tokens} tokens, the stream reported {trace[-1][1] if trace else 0}")
    return trace


def stream_round(base_url: str, model: str, batch: list, max_tokens: int) -> tuple[float, list[Trace]]:
    """All requests of `batch` (prompts) sent at once and streamed: (send time, their traces)."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=1200,
                      limits=httpx.Limits(max_connections=len(batch) + 4)) as http:
        t0 = time.perf_counter()
        return t0, parallel(lambda prompt: stream_one(http, model, prompt, max_tokens), [(p,) for p in batch])


def decode_rate(sent: float, traces: list[Trace]) -> dict | None:
    """Decode tokens/s of the requests while all of them decode together: from the moment the last one has its
    first token (every prompt prefilled, so each step is a decode step of the whole batch) to the moment the first
    one has its last (none finished yet). Each request's rate is read between its own first and last chunk inside
    that window, so the chunking of the servers' --stream-interval does not bias it. None if the window holds
    fewer than two chunks of some request."""
    start, end = max(t[0][0] for t in traces), min(t[-1][0] for t in traces)
    rates, tokens = [], []
    for trace in traces:
        inside = [(t, n) for t, n in trace if start <= t <= end]
        if len(inside) < 2 or inside[-1][1] <= inside[0][1]:
            return None
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        rates.append((n1 - n0) / (t1 - t0))
        tokens.append(n1 - n0)
    total = sum(rates)
    return {"decode_tokens_per_s": total, "tpot_ms": 1e3 * len(traces) / total, "window_s": end - start,
            "window_tokens_min": min(tokens), "first_token_s": [start - sent, min(t[0][0] for t in traces) - sent]}


def median_round(rounds: list[dict]) -> dict:
    """The rounds' median decode rate (the mean of the middle two for an even count) and its TPOT, with the other
    fields (window, first tokens) of the round nearest it. Not the fastest round: host noise slows a round, but a
    round can also read fast (one SGLang round of 64 requests x 4096 tokens read 14% above its three others, H200,
    2026-11-30), and the fastest round keeps exactly such an outlier."""
    rate = statistics.median(x["decode_tokens_per_s"] for x in rounds)
    nearest = min(rounds, key=lambda x: abs(x["decode_tokens_per_s"] - rate))
    tpot = nearest["tpot_ms"] * nearest["decode_tokens_per_s"] / rate   # c / rate, c read from the round
    return {**nearest, "decode_tokens_per_s": rate, "tpot_ms": tpot}


class NoDecodeWindow(RuntimeError):
    """steady_decode found no stretch where every request decoded together (the server ran them apart)."""


class ServerFailed(RuntimeError):
    """A request to one of several servers measured together failed: `name` says whose."""

    def __init__(self, name: str, error: Exception):
        super().__init__(f"{type(error).__name__}: {error}")
        self.name = name


def steady_decode(base_url: str, model: str, prompts: list, max_tokens: int, *, warmup_tokens: int = N_SHORT,
                  repeats: int = 2, min_window_tokens: int = 64, max_tokens_cap: int | None = None) -> dict:
    """A warm-up round of warmup_tokens (prefix cache, graphs), then `repeats` streamed rounds of `prompts` sent
    at once, each read by decode_rate; their median kept (median_round). While some round's window is shorter than
    min_window_tokens per request (the prompts' prefills took longer than the decode asked for), the tokens asked
    for double, up to max_tokens_cap."""
    return steady_decode_together({"": base_url}, model, prompts, max_tokens, warmup_tokens=warmup_tokens,
                                  repeats=repeats, min_window_tokens=min_window_tokens,
                                  max_tokens_cap=max_tokens_cap)[""]


def steady_decode_together(base_urls: dict[str, str], model: str, prompts: list, max_tokens: int, *,
                           warmup_tokens: int = N_SHORT, repeats: int = 2, min_window_tokens: int = 64,
                           max_tokens_cap: int | None = None) -> dict[str, dict]:
    """steady_decode on several servers at once ({name: base_url}), their rounds interleaved (round r visits the
    servers in turn, starting one further each round), so that a host or clock that drifts during the
    measurement drifts for all of them alike; every server is asked for the same tokens. A failed request raises
    ServerFailed naming its server."""
    cap = max_tokens if max_tokens_cap is None else max_tokens_cap
    names = list(base_urls)

    def one_round(name: str, tokens: int):
        try:
            return stream_round(base_urls[name], model, prompts, tokens)
        except Exception as error:
            raise ServerFailed(name, error) from error

    warmup_s = {}
    for name in names:
        sent, _ = one_round(name, warmup_tokens)
        warmup_s[name] = time.perf_counter() - sent
    while True:
        rounds = {name: [] for name in names}
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                rounds[name].append(decode_rate(*one_round(name, max_tokens)))
        if all(x is not None and x["window_tokens_min"] >= min_window_tokens for rs in rounds.values() for x in rs):
            break
        if 2 * max_tokens > cap:
            raise NoDecodeWindow(f"no window of {min_window_tokens} tokens per request where all {len(prompts)} "
                               f"requests decode together within {max_tokens} tokens: {rounds}")
        max_tokens *= 2
    return {name: {**median_round(rs), "max_tokens": max_tokens,
                   "rounds_tokens_per_s": [x["decode_tokens_per_s"] for x in rs], "warmup_s": warmup_s[name]}
            for name, rs in rounds.items()}


def decode_speeds(client, batches=(1, 64)) -> dict:
    """decode_speed at each batch size, as {"decode_tokens_per_s": {batch: tokens/s or None}} plus
    "decode_speed_errors": {batch: why} for a batch whose requests never decoded together: that is a measurement
    that did not happen, not a backend that failed (its outputs still count; the reason is kept)."""
    speeds, errors = {}, {}
    for batch in batches:
        try:
            speeds[str(batch)] = decode_speed(client, batch)
        except NoDecodeWindow as exc:
            speeds[str(batch)], errors[str(batch)] = None, str(exc)[-2000:]
    return {"decode_tokens_per_s": speeds, **({"decode_speed_errors": errors} if errors else {})}


def decode_speed(client, batch: int, context_length: int = 4096) -> float:
    """Decode tokens/s of `batch` concurrent greedy requests with a SPEED_PROMPT_CHARS-token prompt: the median
    of SPEED_REPEATS steady_decode rounds of SPEED_TOKENS tokens (at most what fits the servers' context_length);
    every round's rate is printed."""
    prompts = [_text(random.Random(1000 + i), SPEED_PROMPT_CHARS) for i in range(batch)]
    cap = context_length - SPEED_PROMPT_CHARS - 64
    rate = steady_decode(str(client.base_url), MODEL_NAME, prompts, min(SPEED_TOKENS, cap), repeats=SPEED_REPEATS,
                         max_tokens_cap=cap)
    print(f"decode speed at batch {batch}: rounds {[round(r) for r in rate['rounds_tokens_per_s']]} tok/s, "
          f"{rate['max_tokens']} tokens a request", flush=True)
    return rate["decode_tokens_per_s"]


def free_port() -> int:
    # Two drivers may run at once (one per GPU): a fixed port would let one's client talk to the other's server.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



# ------------------------------------------------------------------------------------------- comparing


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def greedy_agreement(x: dict, y: dict) -> dict:
    """Identical continuations and common-prefix lengths (per prompt and mean), over completions and chat."""
    pairs = [(a[0], b[0]) for kind in ("completions", "chat") for a, b in zip(x[kind], y[kind])]
    prefixes = [common_prefix(a, b) for a, b in pairs]
    return {"identical": sum(a == b for a, b in pairs), "prompts": len(pairs), "prefixes": prefixes,
            "mean_common_prefix": statistics.fmean(prefixes), "tokens": statistics.fmean(len(a) for a, _ in pairs)}


def agreement_shortfall(ours: dict, builtin: dict) -> tuple[float, float]:
    """(mean of builtin - ours per-prompt common prefix, its standard error): how much less our continuations
    agree than the two built-in backends' do with each other, and the prompt-to-prompt noise of that mean."""
    d = [b - a for a, b in zip(ours["prefixes"], builtin["prefixes"])]
    return statistics.fmean(d), statistics.stdev(d) / len(d) ** 0.5


def forced_logprob_diff(x: dict, y: dict) -> dict:
    """max and mean |logprob_x - logprob_y| over the teacher-forced positions (step 0 is prefill, excluded) up to
    the first token x and y were forced differently: within one run every backend is forced the reference's tokens,
    so that is every position; across runs (an fp8 cache against a bf16 one) it is where their references agreed."""
    diffs = []
    for kind in ("forced_completions", "forced_chat"):
        for (tx, lx), (ty, ly) in zip(x[kind], y[kind]):
            same = next((i for i, (a, b) in enumerate(zip(tx, ty)) if a != b), min(len(tx), len(ty)))
            diffs += [abs(a - b) for a, b in zip(lx[1:same], ly[1:same])]
    if not diffs:   # two runs whose references part at once
        return {"max": math.nan, "mean": math.nan, "positions": 0}
    return {"max": max(diffs), "mean": statistics.fmean(diffs), "positions": len(diffs)}


def forced_tokens_ok(result: dict, reference: dict) -> bool:
    return all(toks == ref[0] for kind, src in (("forced_completions", "completions"), ("forced_chat", "chat"))
               for (toks, _), ref in zip(result[kind], reference[src]))


def compare(backends: dict[str, dict], reference: str) -> dict:
    """Every pair's greedy agreement and teacher-forced logprob difference, whether each backend was given the
    reference's tokens, and the decode speeds; `backends` maps names (in report order) to their results."""
    names = list(backends)
    summary = {"greedy": {}, "forced": {}, "forced_tokens_ok": {},
               "decode_tokens_per_s": {n: r["decode_tokens_per_s"] for n, r in backends.items()
                                       if "decode_tokens_per_s" in r},
               "decode_speed_errors": {n: r["decode_speed_errors"] for n, r in backends.items()
                                       if "decode_speed_errors" in r}}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            summary["greedy"][f"{x}~{y}"] = greedy_agreement(backends[x], backends[y])
            if "forced_completions" in backends[x]:
                summary["forced"][f"{x}~{y}"] = forced_logprob_diff(backends[x], backends[y])
    if "forced_completions" in backends.get(reference, {}):
        summary["forced_tokens_ok"] = {n: forced_tokens_ok(r, backends[reference]) for n, r in backends.items()}
    return summary


# ---------------------------------------------------------------------------------------- the rules


LOGPROB_MAX_FLOOR = 0.1     # logits here are ~3 in size; a wrong scale, page or stale plan moves them by 0.5+
LOGPROB_MEAN_FLOOR = 0.01


def run_for_test(run: Callable[[Path, Callable[[Server], None]], dict], name: str, tp: int,
                 tmp_path_factory) -> dict:
    """A pytest fixture's body: skip without `tp` GPUs, run the driver as `run(workdir, on_up)` in a folder kept
    under $MLA_E2E_RESULTS/name (else a temporary one) with its results.json, print the brief summary and return
    the summary."""
    import pytest
    import torch

    if torch.cuda.device_count() < tp:
        pytest.skip(f"tensor parallel {tp} needs {tp} GPUs, this machine has {torch.cuda.device_count()}")
    keep = os.environ.get("MLA_E2E_RESULTS")
    workdir = Path(keep) / name if keep else tmp_path_factory.mktemp(name)
    # Decode tokens/s at batch 1 is host-bound: each server runs on the host's fast cores once it is up (it starts
    # on every core: a first start compiles kernels), as bench_serving's (MLA_E2E_CPUS: auto, all or a core list).
    host = host_cpus.choose(os.environ.get("MLA_E2E_CPUS", "auto"))
    print(f"[{name}] host: {host_cpus.describe(host)}", flush=True)
    results = {**run(workdir, lambda server: server.pin(host)), "host": host}
    (workdir / "results.json").write_text(json.dumps(results))
    print(f"\n[{name}] " + json.dumps(brief(results["summary"]), indent=1))
    return results["summary"]


def assert_forced_logprobs_match(summary: dict, reference: str, builtin: str, ours: str) -> None:
    """Teacher-forced logprobs: ours as close to the reference's as another built-in's are (max and mean
    |difference| at most twice, or under the floors), over at least the 32 completions' decode positions."""
    mine, theirs = summary["forced"][f"{reference}~{ours}"], summary["forced"][f"{reference}~{builtin}"]
    assert mine["positions"] >= 32 * (GEN_TOKENS - 1)
    assert mine["max"] <= max(LOGPROB_MAX_FLOOR, 2 * theirs["max"]), (mine, theirs)
    assert mine["mean"] <= max(LOGPROB_MEAN_FLOOR, 2 * theirs["mean"]), (mine, theirs)


def assert_greedy_agreement(summary: dict, reference: str, builtin: str, ours: str) -> None:
    """Our greedy agreement with each built-in no lower than theirs with each other, beyond 2 standard errors."""
    between = summary["greedy"][f"{reference}~{builtin}"]
    for pair in (f"{reference}~{ours}", f"{builtin}~{ours}"):
        shortfall, stderr = agreement_shortfall(summary["greedy"][pair], between)
        assert shortfall <= 2 * stderr, (pair, shortfall, stderr, summary["greedy"])
