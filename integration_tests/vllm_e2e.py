"""End to end through `vllm serve` and the OpenAI client: the tiny DeepSeek-V2-shaped checkpoint served with each
attention backend in turn (one server at a time, CUDA graphs on), the same prompts sent to each.

Two modes, because a custom logits processor moves vLLM 0.26 from its default model runner for DeepSeek-V2 (V2)
to the V1 runner:
  default  the server as users run it (Model Runner V2): greedy continuations of COMPLETION_PROMPTS
           (/v1/completions) and CHAT_PROMPTS (/v1/chat/completions), and decode tokens/s at batch 1 and 64
           ((N_LONG - N_SHORT) extra tokens per request over the extra wall time: prefill and request overheads
           cancel);
  forced   with force_tokens.ForceTokens loaded (V1 runner): the same greedy continuations, then the
           reference backend's greedy token ids forced back through every backend, so each scores the same
           sequences decode step by decode step (teacher-forced logprobs).

    python integration_tests/vllm_e2e.py --tp 1 --mode default --out e2e.json   (test_vllm_e2e.py asserts on it)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = "FLASHMLA"
BACKENDS = ("FLASHMLA", "TRITON_MLA", "CUSTOM")
MODEL_NAME = "tiny-deepseek-v2"
LM_HEAD_STD = 0.2          # peaked logits: see tiny_model.generate
GEN_TOKENS = 64
CHAT_TOKENS = 48
N_SHORT, N_LONG = 16, 272
SPEED_PROMPT_CHARS = 2000
MODES = ("default", "forced")
SERVER_ARGS = ("--block-size", "64", "--dtype", "bfloat16", "--max-model-len", "4096", "--max-num-seqs", "64",
               "--gpu-memory-utilization", "0.4", "--no-enable-prefix-caching", "--seed", "0",
               "--served-model-name", MODEL_NAME)
FORCED_ARGS = ("--logits-processors", "force_tokens:ForceTokens")
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


class Server:
    def __init__(self, model: Path, backend: str, tp: int, port: int, log: Path, extra_args: tuple = ()):
        from mla_backend.serve import vllm_command

        self.backend, self.base_url, self.log_path = backend, f"http://127.0.0.1:{port}", log
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               "VLLM_CACHE_ROOT": str(log.parent / f"vllm_cache_{log.stem}")}
        cmd = [*vllm_command(), "serve", str(model), "--attention-backend", backend, "--tensor-parallel-size",
               str(tp), "--port", str(port), *SERVER_ARGS, *extra_args]
        self.log = open(log, "w")
        self.log.write(" ".join(cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def wait(self, timeout: float = 400) -> float:
        from mla_backend.serve import wait_until_ready

        t0 = time.monotonic()
        if not wait_until_ready(self.base_url, self.proc, timeout):
            self.stop()
            tail = self.log_path.read_text()[-6000:]
            raise RuntimeError(f"vllm serve --attention-backend {self.backend} did not come up:\n{tail}")
        return time.monotonic() - t0

    def stop(self) -> None:
        from mla_backend.serve import _stop

        _stop(self.proc)
        self.log.close()


def _token_ids(tokens: list[str]) -> list[int]:
    return [int(t.split(":", 1)[1]) for t in tokens]


def complete(client, prompt: str, max_tokens: int, forced: list[int] | None = None) -> tuple[list[int], list[float]]:
    extra = {"return_tokens_as_token_ids": True, "ignore_eos": True}
    if forced is not None:
        extra["vllm_xargs"] = {"force_tokens": forced}
    r = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=max_tokens, temperature=0.0,
                                  logprobs=1, extra_body=extra)
    lp = r.choices[0].logprobs
    return _token_ids(lp.tokens), [float(x) for x in lp.token_logprobs]


def chat(client, prompt: str, max_tokens: int, forced: list[int] | None = None) -> tuple[list[int], list[float]]:
    extra = {"return_tokens_as_token_ids": True, "ignore_eos": True}
    if forced is not None:
        extra["vllm_xargs"] = {"force_tokens": forced}
    r = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": prompt}],
                                       max_tokens=max_tokens, temperature=0.0, logprobs=True, top_logprobs=1,
                                       extra_body=extra)
    content = r.choices[0].logprobs.content
    return _token_ids([c.token for c in content]), [float(c.logprob) for c in content]


def _parallel(fn, jobs: list[tuple]) -> list:
    with ThreadPoolExecutor(max_workers=64) as pool:
        return list(pool.map(lambda args: fn(*args), jobs))


def decode_speed(client, batch: int) -> float:
    """Decode tokens/s of `batch` concurrent greedy requests with a SPEED_PROMPT_CHARS-token prompt."""
    prompts = [_text(random.Random(1000 + i), SPEED_PROMPT_CHARS) for i in range(batch)]

    def wall(n: int) -> float:
        t0 = time.perf_counter()
        _parallel(lambda p: client.completions.create(model=MODEL_NAME, prompt=p, max_tokens=n, temperature=0.0,
                                                      extra_body={"ignore_eos": True}), [(p,) for p in prompts])
        return time.perf_counter() - t0

    wall(N_SHORT)  # warm-up
    short = min(wall(N_SHORT) for _ in range(2))
    long = min(wall(N_LONG) for _ in range(2))
    return batch * (N_LONG - N_SHORT) / (long - short)


def run_backend(client, mode: str, reference: dict | None) -> dict:
    result = {}
    result["completions"] = _parallel(complete, [(client, p, GEN_TOKENS) for p in COMPLETION_PROMPTS])
    result["chat"] = _parallel(chat, [(client, p, CHAT_TOKENS) for p in CHAT_PROMPTS])
    if mode == "default":
        result["decode_tokens_per_s"] = {str(b): decode_speed(client, b) for b in (1, 64)}
        return result
    ref = reference or result
    result["forced_completions"] = _parallel(complete, [(client, p, GEN_TOKENS, toks) for p, (toks, _) in
                                                        zip(COMPLETION_PROMPTS, ref["completions"])])
    result["forced_chat"] = _parallel(chat, [(client, p, CHAT_TOKENS, toks) for p, (toks, _) in
                                             zip(CHAT_PROMPTS, ref["chat"])])
    return result


def free_port() -> int:
    # Two drivers may run at once (one per GPU): a fixed port would let one's client talk to the other's server.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tp: int, workdir: Path, mode: str = "default", backends=BACKENDS) -> dict:
    from openai import OpenAI

    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    model = checkpoint(workdir / "tiny_lmhead02")
    results = {"tp": tp, "mode": mode, "backends": {}}
    for backend in sorted(backends, key=lambda b: b != REFERENCE):
        server = Server(model, backend, tp, free_port(), workdir / f"server_{backend}_tp{tp}_{mode}.log",
                        FORCED_ARGS if mode == "forced" else ())
        try:
            startup = server.wait()
            client = OpenAI(base_url=server.base_url + "/v1", api_key="none", timeout=600, max_retries=0)
            t0 = time.monotonic()
            result = run_backend(client, mode, results["backends"].get(REFERENCE))
            result["startup_s"], result["requests_s"] = startup, time.monotonic() - t0
        finally:
            server.stop()
        log = server.log_path.read_text()
        result["cuda_graphs"] = "Graph capturing finished" in log
        result["model_runner"] = "V2" if "Using V2 Model Runner" in log else "V1"
        result["backend_lines"] = [line[-160:] for line in log.splitlines() if re.search(r"Using \S+ backend", line)][:4]
        results["backends"][backend] = result
        print(f"[tp{tp} {mode}] {backend}: up in {startup:.0f} s, requests {result['requests_s']:.0f} s, "
              f"runner {result['model_runner']}, decode tok/s {result.get('decode_tokens_per_s')}", flush=True)
    results["summary"] = summarize(results)
    return results


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


def summarize(results: dict) -> dict:
    b = results["backends"]
    names = [n for n in BACKENDS if n in b]
    summary = {"tp": results["tp"], "mode": results["mode"], "greedy": {}, "forced": {}, "forced_tokens_ok": {},
               "decode_tokens_per_s": {n: b[n]["decode_tokens_per_s"] for n in names if "decode_tokens_per_s" in b[n]}}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            summary["greedy"][f"{x}~{y}"] = greedy_agreement(b[x], b[y])
            if "forced_completions" in b[x]:
                summary["forced"][f"{x}~{y}"] = forced_logprob_diff(b[x], b[y])
    for key in ("cuda_graphs", "model_runner", "backend_lines"):
        summary[key] = {n: b[n][key] for n in names}
    if "forced_completions" in b.get(REFERENCE, {}):
        summary["forced_tokens_ok"] = {n: forced_tokens_ok(b[n], b[REFERENCE]) for n in names}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_e2e"))
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    parser.add_argument("--mode", choices=MODES, default="default")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    results = run(args.tp, args.workdir, args.mode, tuple(args.backends.split(",")))
    print(json.dumps(results["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
