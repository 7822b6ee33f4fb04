"""What the end-to-end serving tests of every engine share: the tiny checkpoint, the prompts, the OpenAI-client
helpers for decode speed, and the agreement measures (greedy common prefixes, teacher-forced logprob differences).

Each engine's driver (vllm_e2e.py, sglang_e2e.py) starts one server per attention backend, sends the same prompts
and hands its per-backend results here; a result is a dict with "completions" and "chat" (lists of (token ids,
logprobs) per prompt) and, when teacher forcing ran, "forced_completions" and "forced_chat".
"""
from __future__ import annotations

import random
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODEL_NAME = "tiny-deepseek-v2"
LM_HEAD_STD = 0.2          # peaked logits: see tiny_model.generate
GEN_TOKENS = 64
CHAT_TOKENS = 48
N_SHORT, N_LONG = 16, 272
SPEED_PROMPT_CHARS = 2000

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
    from mla_backend import tiny_model

    if not (directory / "DONE").is_file():
        tiny_model.generate(directory, lm_head_std=LM_HEAD_STD)
    return directory


def parallel(fn, jobs: list[tuple]) -> list:
    with ThreadPoolExecutor(max_workers=64) as pool:
        return list(pool.map(lambda args: fn(*args), jobs))


def decode_speed(client, batch: int, extra_body: dict | None = None) -> float:
    """Decode tokens/s of `batch` concurrent greedy requests with a SPEED_PROMPT_CHARS-token prompt."""
    prompts = [_text(random.Random(1000 + i), SPEED_PROMPT_CHARS) for i in range(batch)]

    def wall(n: int) -> float:
        t0 = time.perf_counter()
        parallel(lambda p: client.completions.create(model=MODEL_NAME, prompt=p, max_tokens=n, temperature=0.0,
                                                      extra_body={"ignore_eos": True, **(extra_body or {})}), [(p,) for p in prompts])
        return time.perf_counter() - t0

    wall(N_SHORT)  # warm-up
    short = min(wall(N_SHORT) for _ in range(2))
    long = min(wall(N_LONG) for _ in range(2))
    return batch * (N_LONG - N_SHORT) / (long - short)


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
    """max and mean |logprob_x - logprob_y| over every teacher-forced position (step 0 is prefill, excluded)."""
    diffs = []
    for kind in ("forced_completions", "forced_chat"):
        for (_, lx), (_, ly) in zip(x[kind], y[kind]):
            diffs += [abs(a - b) for a, b in zip(lx[1:], ly[1:])]
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
                                       if "decode_tokens_per_s" in r}}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            summary["greedy"][f"{x}~{y}"] = greedy_agreement(backends[x], backends[y])
            if "forced_completions" in backends[x]:
                summary["forced"][f"{x}~{y}"] = forced_logprob_diff(backends[x], backends[y])
    if "forced_completions" in backends.get(reference, {}):
        summary["forced_tokens_ok"] = {n: forced_tokens_ok(r, backends[reference]) for n, r in backends.items()}
    return summary
