"""Soak: one engine server with our attention backend (CUDA graphs on, page size 64, otherwise as users run it)
given --requests requests a pass of mixed prompt and output lengths by --concurrency clients at once, watched
for errors, for growth of GPU memory after warm-up, and for greedy outputs of a prompt served alone that change
between before and after the load.

The workload (the same for a given seed) is sent --passes times (new prompts each pass, same lengths) and mixes,
in every tenth of a pass:
  - plain   prompt lengths from 1 token to the longest request, log-uniform, 1..512 output tokens;
  - limit   prompt + max_tokens the longest request the engine accepts (the first: its longest prompt, 1 token out);
  - cancel  ~10%, streamed and closed after 1..4 chunks;
  - repeat  REPEAT_PROMPTS prompts, each sent REPEAT_TIMES times spread over the pass, REPEAT_TOKENS tokens each.
All greedy (temperature 0) with ignore_eos, prompts are random token ids. Each repeated prompt is also sent alone on
the idle server before the first pass and again after the last (prefix cache flushed, so both prefill it cold): the
two must give the same token ids. Sent amid the mixed load, a prompt's batch differs from send to send, and so does
the order of floating-point sums in the engine's matmuls and attention (any backend): on a random tiny model, whose
logits are nearly tied, greedy tokens then drift apart after a while; that agreement is recorded, not required.
GPU memory (nvidia-smi, so that this process holds no CUDA context) is sampled every SAMPLE_S seconds; the first
pass is the warm-up (every shape of the workload once) and the growth is the later passes' peak over its peak.

    python integration_tests/soak.py --engine {sglang,vllm} [--model DIR] [--requests 600] [--passes 2]
        [--concurrency 32] [--context-length 4096] [--seed 0] [--max-growth-mib 256] [--out FILE]
        [--workdir /tmp/mla_soak]

Without --model it serves the tiny checkpoint (e2e_common.checkpoint). The results JSON (default
<workdir>/soak_<engine>.json) and the server log (<workdir>/server_<engine>.log) stay in the work folder. Exit
code 0 only when every request completed or was cancelled as planned, memory grew by at most --max-growth-mib
after warm-up, and every repeated prompt gave identical outputs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import e2e_common  # noqa: E402
import sglang_e2e  # noqa: E402
import vllm_e2e  # noqa: E402

ENGINES = ("sglang", "vllm")
MAX_OUTPUT = 512
CANCEL_FRACTION, LIMIT_FRACTION = 0.10, 0.05
CANCEL_CHUNKS = (1, 4)
REPEAT_PROMPTS, REPEAT_TIMES, REPEAT_TOKENS = 20, 5, 128
SAMPLE_S = 2.0
FIRST_ERRORS = 5


# ---------------------------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Request:
    index: int
    kind: str                 # plain, limit, cancel or repeat
    prompt_len: int
    max_tokens: int
    cancel_after: int = 0     # chunks read before the stream is closed (kind cancel)
    repeat_of: int = -1       # which repeated prompt (kind repeat)


@dataclass(frozen=True)
class Limits:
    prompt: int     # the longest prompt the engine takes
    request: int    # the most prompt + output tokens it serves in one request


def engine_limits(engine: str, context_length: int) -> Limits:
    """vLLM serves up to --max-model-len tokens in all, after a prompt of up to one less. SGLang 0.5.17, measured
    on the H200 at --context-length 4096: a 4090-token prompt is refused ("Input length (4090 tokens) exceeds the
    maximum allowed length (4090 tokens)"), and 313 tokens asked after a 3782-token prompt came back as 312:
    prompts up to context - 7, and a request stops at context - 2 tokens in all."""
    if engine == "sglang":
        return Limits(context_length - 7, context_length - 2)
    return Limits(context_length - 1, context_length)


def _log_uniform(rng: random.Random, high: int) -> int:
    return min(high, max(1, round(math.exp(rng.uniform(0.0, math.log(high))))))


def _kinds(slots: int, rng: random.Random) -> list[str]:
    """plain/limit/cancel for `slots` requests, the same mix in every tenth (so the warm-up meets each kind)."""
    kinds = []
    for tenth in range(10):
        size = slots * (tenth + 1) // 10 - slots * tenth // 10
        block = ["cancel"] * round(size * CANCEL_FRACTION) + ["limit"] * max(1, round(size * LIMIT_FRACTION))
        block = (block + ["plain"] * size)[:size]
        rng.shuffle(block)
        kinds += block
    return kinds


def plan(n: int, limits: Limits, seed: int, repeat_prompts: int = REPEAT_PROMPTS,
         repeat_times: int = REPEAT_TIMES) -> list[Request]:
    """The `n` requests in sending order; the same for the same arguments."""
    repeats = repeat_prompts * repeat_times
    if n < 2 * repeats or min(limits.prompt, limits.request - MAX_OUTPUT) < 1:
        raise ValueError(f"need at least {2 * repeats} requests and room for a prompt next to {MAX_OUTPUT} tokens")
    rng = random.Random(seed)

    def longest_prompt(max_tokens: int) -> int:
        return min(limits.prompt, limits.request - max_tokens)

    repeat_lens = [_log_uniform(rng, longest_prompt(REPEAT_TOKENS)) for _ in range(repeat_prompts)]
    # the k-th send of every repeated prompt lands in the k-th of repeat_times stretches of the run
    repeat_at = {round(i * n / repeats): i % repeat_prompts for i in range(repeats)}
    kinds = iter(_kinds(n - repeats, rng))
    requests, first_limit = [], True
    for index in range(n):
        if index in repeat_at:
            r = repeat_at[index]
            requests.append(Request(index, "repeat", repeat_lens[r], REPEAT_TOKENS, repeat_of=r))
            continue
        kind = next(kinds)
        if kind == "limit":
            max_tokens = 1 if first_limit else rng.randint(1, MAX_OUTPUT)
            first_limit = False
            requests.append(Request(index, kind, longest_prompt(max_tokens), max_tokens))
        elif kind == "cancel":
            max_tokens = rng.randint(64, MAX_OUTPUT)
            requests.append(Request(index, kind, _log_uniform(rng, longest_prompt(max_tokens)), max_tokens,
                                    cancel_after=rng.randint(*CANCEL_CHUNKS)))
        else:
            max_tokens = rng.randint(1, MAX_OUTPUT)
            requests.append(Request(index, kind, _log_uniform(rng, longest_prompt(max_tokens)), max_tokens))
    return requests


def prompt_of(request: Request, seed: int, vocab_size: int, special: set[int], pass_index: int = 0) -> list[int]:
    """Random token ids, the same for every send of a repeated prompt, new for every other request of each pass."""
    if request.kind == "repeat":
        key = f"repeat{request.repeat_of}"
    else:
        key = f"request{request.index}" + (f"-pass{pass_index}" if pass_index else "")
    rng = random.Random(f"{seed}-{key}")
    ids: list[int] = []
    while len(ids) < request.prompt_len:
        token = rng.randrange(vocab_size)
        if token not in special:
            ids.append(token)
    return ids


def describe(requests: list[Request]) -> dict:
    return {"kinds": dict(Counter(r.kind for r in requests)), "longest_prompt": max(r.prompt_len for r in requests),
            "longest_request": max(r.prompt_len + r.max_tokens for r in requests),
            "planned_output_tokens": sum(r.max_tokens for r in requests if r.kind != "cancel")}


# ---------------------------------------------------------------------------------------------- sending


@dataclass
class Outcome:
    index: int
    status: str               # completed, cancelled or error
    end: float                # time.monotonic() when it finished
    tokens: int = 0
    output: list[int] | None = None
    error: str | None = None


def _token_ids(engine: str):
    """Each engine's e2e helper for greedy token ids (the server is named e2e_common.MODEL_NAME for them)."""
    if engine == "sglang":
        return sglang_e2e.complete
    return lambda client, prompt, max_tokens: vllm_e2e.complete(client, prompt, max_tokens)[0]


def send(client, engine: str, request: Request, prompt: list[int]) -> Outcome:
    try:
        output = None
        if request.kind == "repeat":
            output = list(_token_ids(engine)(client, prompt, request.max_tokens))
            tokens = len(output)
        elif request.kind == "cancel":
            if _stream_and_cancel(client, prompt, request):
                return Outcome(request.index, "cancelled", time.monotonic())
            tokens = request.max_tokens  # the stream ended first, with finish reason "length"
        else:
            r = client.completions.create(model=e2e_common.MODEL_NAME, prompt=prompt, max_tokens=request.max_tokens,
                                          temperature=0.0, extra_body={"ignore_eos": True})
            tokens = r.usage.completion_tokens
        if tokens != request.max_tokens:
            raise RuntimeError(f"asked for {request.max_tokens} tokens, the server generated {tokens}")
        return Outcome(request.index, "completed", time.monotonic(), tokens, output)
    except Exception as exc:  # recorded: the soak counts errors rather than stopping at the first
        message = (f"request {request.index} ({request.kind}, prompt {request.prompt_len}, max_tokens "
                   f"{request.max_tokens}): {type(exc).__name__}: {exc}")
        return Outcome(request.index, "error", time.monotonic(), error=message[:1000])


def _stream_and_cancel(client, prompt: list[int], request: Request) -> bool:
    """Reads `cancel_after` chunks and closes the stream, so that the server sees its client go: True when it
    did, False when the stream had ended first with all its tokens."""
    stream = client.completions.create(model=e2e_common.MODEL_NAME, prompt=prompt, max_tokens=request.max_tokens,
                                       temperature=0.0, stream=True, extra_body={"ignore_eos": True})
    chunks = 0
    try:
        for chunk in stream:
            chunks += 1
            reason = chunk.choices[0].finish_reason if chunk.choices else None
            if reason is not None:
                if reason != "length":
                    raise RuntimeError(f"the stream ended after {chunks} chunks with finish reason {reason!r}")
                return False
            if chunks >= request.cancel_after:
                return True
        raise RuntimeError(f"the stream ended after {chunks} chunks without a finish reason")
    finally:
        stream.close()


def send_all(client, engine: str, requests: list[Request], concurrency: int, seed: int, vocab_size: int,
             special: set[int], pass_index: int = 0) -> list[Outcome]:
    """Every request in order through a pool of `concurrency` clients; outcomes in request order."""
    def one(request: Request) -> Outcome:
        return send(client, engine, request, prompt_of(request, seed, vocab_size, special, pass_index))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, requests))


def first_sends(requests: list[Request]) -> list[Request]:
    """One send of each repeated prompt, in prompt order."""
    firsts: dict[int, Request] = {}
    for r in requests:
        if r.kind == "repeat":
            firsts.setdefault(r.repeat_of, r)
    return [firsts[k] for k in sorted(firsts)]


FLUSH_PATH = {"sglang": "/flush_cache", "vllm": "/reset_prefix_cache"}   # vLLM's with VLLM_SERVER_DEV_MODE=1
SERVER_ENV = {"sglang": {}, "vllm": {"VLLM_SERVER_DEV_MODE": "1"}}


def try_flush_prefix_cache(base_url: str, engine: str) -> str | None:
    """Empties the server's prefix cache (idle server), so the next prompt is prefilled from scratch; why it
    could not, or None."""
    request = urllib.request.Request(base_url + FLUSH_PATH[engine], data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return None if response.status == 200 else f"{FLUSH_PATH[engine]}: HTTP {response.status}"
    except OSError as exc:
        return f"{FLUSH_PATH[engine]}: {exc}"


# ---------------------------------------------------------------------------------------------- GPU memory


class MemorySampler(threading.Thread):
    """(time.monotonic(), MiB) every `interval` seconds until stop()."""

    def __init__(self, interval: float = SAMPLE_S, query=e2e_common.query_memory_mib):
        super().__init__(daemon=True)
        self.interval, self.query, self.samples = interval, query, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self._sample()
            if self._stop_event.wait(self.interval):
                self._sample()  # at the end of the run, so that a short one still has a sample after warm-up
                return

    def _sample(self) -> None:
        mib = self.query()
        if mib is not None:
            self.samples.append((time.monotonic(), mib))

    def stop(self) -> list[tuple[float, int]]:
        self._stop_event.set()
        self.join()
        return self.samples


# ---------------------------------------------------------------------------------------------- results


def memory_summary(samples: list[tuple[float, int]], warmup_done: float) -> dict:
    """The peak during the warm-up (samples before warmup_done), the peak after it and the growth of the one over
    the other (None without samples on both sides; 0 when the later peak is lower)."""
    during = [mib for t, mib in samples if t < warmup_done]
    after = [mib for t, mib in samples if t >= warmup_done]
    summary = {"samples": len(samples), "first_mib": samples[0][1] if samples else None,
               "last_mib": samples[-1][1] if samples else None, "warmup_mib": None, "max_after_warmup_mib": None,
               "growth_mib": None}
    if during and after:
        summary.update(warmup_mib=max(during), max_after_warmup_mib=max(after),
                       growth_mib=max(0, max(after) - max(during)))
    return summary


def tally(outcomes: list[Outcome]) -> dict:
    by_status = {s: sum(o.status == s for o in outcomes) for s in ("completed", "cancelled", "error")}
    return {"sent": len(outcomes), "completed": by_status["completed"], "cancelled": by_status["cancelled"],
            "errors": by_status["error"], "first_errors": [o.error for o in outcomes if o.error][:FIRST_ERRORS],
            "tokens_generated": sum(o.tokens for o in outcomes if o.status == "completed")}


def repeat_agreement(requests: list[Request], outcomes: list[Outcome]) -> dict:
    """Whether every repeated prompt gave the same token ids each time it completed; for those that did not, how
    many different outputs and the shortest common prefix with the first."""
    outputs: dict[int, list[list[int]]] = {}
    for request, outcome in zip(requests, outcomes):
        if request.kind == "repeat" and outcome.output is not None:
            outputs.setdefault(request.repeat_of, []).append(outcome.output)
    mismatches = []
    for prompt, outs in sorted(outputs.items()):
        distinct = {tuple(o) for o in outs}
        if len(distinct) > 1:
            mismatches.append({"prompt": prompt, "sends": len(outs), "distinct": len(distinct),
                               "shortest_common_prefix": min(e2e_common.common_prefix(outs[0], o) for o in outs)})
    return {"prompts": len(outputs), "sends": sum(len(o) for o in outputs.values()),
            "all_identical": not mismatches, "mismatches": mismatches}


def alone_agreement(before: list[Outcome], after: list[Outcome]) -> dict:
    """Whether each repeated prompt sent alone gave the same token ids before and after the load."""
    differ = [{"prompt": i, "common_prefix": e2e_common.common_prefix(b.output or [], a.output or []),
               "tokens": len(b.output or [])}
              for i, (b, a) in enumerate(zip(before, after, strict=True)) if b.output is None or b.output != a.output]
    return {"prompts": len(before), "all_identical": not differ, "differ": differ,
            "errors": [o.error for o in before + after if o.error]}


def verdict(counts: dict, memory: dict, alone: dict, max_growth_mib: float, flush_error: str | None = None
            ) -> list[str]:
    """Why the soak failed; empty when it passed."""
    failures = []
    if counts["errors"]:
        failures.append(f"{counts['errors']} requests failed")
    if counts["completed"] + counts["cancelled"] != counts["sent"]:
        failures.append(f"completed {counts['completed']} + cancelled {counts['cancelled']} != sent {counts['sent']}")
    if memory["growth_mib"] is None:
        failures.append("no GPU memory samples after warm-up")
    elif memory["growth_mib"] > max_growth_mib:
        failures.append(f"GPU memory grew by {memory['growth_mib']} MiB after warm-up (limit {max_growth_mib})")
    if not alone["all_identical"]:
        failures.append(f"{len(alone['differ'])} of {alone['prompts']} prompts sent alone gave different outputs "
                        "before and after the load")
    if flush_error:
        failures.append(f"the prefix cache was not flushed before the second alone sends ({flush_error})")
    return failures


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--model", type=Path, help="checkpoint directory (default: the tiny checkpoint)")
    parser.add_argument("--requests", type=int, default=600, help="requests per pass")
    parser.add_argument("--passes", type=int, default=2, help="passes of the workload; the first is the warm-up")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--context-length", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-growth-mib", type=float, default=256)
    parser.add_argument("--mem-fraction", type=float, default=0.85,
                        help="SGLang --mem-fraction-static / vLLM --gpu-memory-utilization")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_soak"))
    parser.add_argument("--out", type=Path, help="results JSON (default: <workdir>/soak_<engine>.json)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.passes < 2:
        parser.error("--concurrency must be positive and --passes at least 2 (the first is the warm-up)")
    args.out = args.out or args.workdir / f"soak_{args.engine}.json"
    return args


def server_command(args: argparse.Namespace, model: Path, port: int) -> list[str]:
    """The engine's server as users run it, with our backend, for `concurrency` requests at once."""
    return e2e_common.engine_command(
        args.engine, sys.executable, model, e2e_common.OUR_BACKEND[args.engine], port,
        context_length=args.context_length, max_batch=args.concurrency, served_name=e2e_common.MODEL_NAME,
        mem_fraction=args.mem_fraction, seed=args.seed)


def run(args: argparse.Namespace) -> dict:
    """Starts the server, sends the workload, stops the server; the results (verdict included)."""
    if importlib.util.find_spec(args.engine) is None:
        raise RuntimeError(f"{args.engine} is not installed in {sys.executable}")
    from openai import OpenAI

    args.workdir.mkdir(parents=True, exist_ok=True)
    model = (args.model or e2e_common.checkpoint(args.workdir / "tiny_lmhead02")).resolve()
    requests = plan(args.requests, engine_limits(args.engine, args.context_length), args.seed)
    vocab_size, special = e2e_common.vocabulary(model)
    server = e2e_common.start_engine_server(args.engine, lambda port: server_command(args, model, port),
                                            args.workdir / f"server_{args.engine}.log",
                                            extra_env=SERVER_ENV[args.engine])
    alone = first_sends(requests)
    try:
        startup_s = server.wait(args.startup_timeout)
        client = OpenAI(base_url=server.base_url + "/v1", api_key="none", timeout=600, max_retries=0)
        alone_before = send_all(client, args.engine, alone, 1, args.seed, vocab_size, special)   # one at a time
        sampler = MemorySampler()
        sampler.start()
        t0 = time.monotonic()
        outcomes, pass_ends = [], []
        for pass_index in range(args.passes):
            outcomes += send_all(client, args.engine, requests, args.concurrency, args.seed, vocab_size, special,
                                 pass_index)
            pass_ends.append(time.monotonic())
        duration = time.monotonic() - t0
        samples = sampler.stop()
        flush_error = try_flush_prefix_cache(server.base_url, args.engine)
        alone_after = send_all(client, args.engine, alone, 1, args.seed, vocab_size, special)
    finally:
        server.stop()
    log = server.log_path.read_text()
    inspect = sglang_e2e.inspect_log if args.engine == "sglang" else vllm_e2e.inspect_log
    counts, agreement = tally(outcomes), alone_agreement(alone_before, alone_after)
    memory = memory_summary(samples, pass_ends[0])
    mixed = [repeat_agreement(requests, outcomes[p * len(requests):(p + 1) * len(requests)])
             for p in range(args.passes)]
    return {"engine": args.engine, "backend": e2e_common.OUR_BACKEND[args.engine], "model": str(model),
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "workload": describe(requests), "startup_s": startup_s, "duration_s": duration,
            "requests_per_s": len(outcomes) / duration, "counts": counts,
            "output_tokens_per_s": counts["tokens_generated"] / duration, "memory": memory,
            "memory_samples": [(round(t - t0, 1), mib) for t, mib in samples],
            "pass_ends_s": [round(t - t0, 1) for t in pass_ends],
            "repeats": {"alone": agreement, "mixed_per_pass": mixed},
            "log": inspect(log), "flush_error": flush_error,
            "failures": verdict(counts, memory, agreement, args.max_growth_mib, flush_error)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("memory_samples", "settings")}, indent=1))
    print(f"written: {args.out}; {'PASSED' if not result['failures'] else 'FAILED: ' + '; '.join(result['failures'])}")
    return 0 if not result["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
