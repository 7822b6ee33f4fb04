"""End to end through `vllm serve` and the OpenAI client: the tiny DeepSeek-V2-shaped checkpoint served with each
attention backend in turn (one server at a time, CUDA graphs on), the same prompts sent to each.

Two modes, because a custom logits processor moves vLLM 0.26 from its default model runner for DeepSeek-V2 (V2)
to the V1 runner:
  default  the server as users run it (Model Runner V2): greedy continuations of COMPLETION_PROMPTS
           (/v1/completions) and CHAT_PROMPTS (/v1/chat/completions), and decode tokens/s at batch 1 and 64
           (e2e_common.decode_speeds: streamed, read while all the requests decode together; a batch whose
           requests never decode together is recorded as not measured, with the reason);
  forced   with force_tokens.ForceTokens loaded (V1 runner): the same greedy continuations, then the
           reference backend's greedy token ids forced back through every backend, so each scores the same
           sequences decode step by decode step (teacher-forced logprobs).

    python integration_tests/vllm_e2e.py --tp 1 --mode default --out e2e.json   (test_vllm_e2e.py asserts on it)

MLA_E2E_KV_CACHE_DTYPE=fp8 serves every backend with `--kv-cache-dtype fp8` (FLASHMLA, TRITON_MLA and ours all
read vLLM's fp8 e4m3 cache; the tiny model's 16 heads are within our fp8 kernel's 32 query rows at TP 1 and 2);
its logs and results are kept apart from the bf16 run's (file names end in _fp8).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import e2e_common
from e2e_common import (CHAT_PROMPTS, CHAT_TOKENS, COMPLETION_PROMPTS, GEN_TOKENS, MODEL_NAME, Server, checkpoint,
                        decode_speeds, parallel, serve_each)

HERE = Path(__file__).resolve().parent
REFERENCE = "FLASHMLA"
BACKENDS = ("FLASHMLA", "TRITON_MLA", "CUSTOM")
MODES = ("default", "forced")
SERVER_ARGS = ("--block-size", "64", "--dtype", "bfloat16", "--max-model-len", "4096", "--max-num-seqs", "64",
               "--gpu-memory-utilization", "0.4", "--no-enable-prefix-caching", "--seed", "0",
               "--served-model-name", MODEL_NAME, "--stream-interval", "8")
FORCED_ARGS = ("--logits-processors", "force_tokens:ForceTokens")


def kv_cache_dtype() -> str:
    """--kv-cache-dtype for every server of a run: $MLA_E2E_KV_CACHE_DTYPE (auto, fp8, fp8_e4m3), default auto."""
    return os.environ.get("MLA_E2E_KV_CACHE_DTYPE", "auto")


def kv_tag(kv: str) -> str:
    """The suffix of a run's file names: none for the model's dtype, _fp8 for an fp8 cache."""
    return "" if kv == "auto" else f"_{kv}"


def start_server(model: Path, backend: str, tp: int, log: Path, extra_args: tuple = ()) -> Server:
    from mla_backend.cli.serve import vllm_command

    return e2e_common.start_engine_server(
        "vllm", lambda port: [*vllm_command(), "serve", str(model), "--attention-backend", backend,
                              "--tensor-parallel-size", str(tp), "--port", str(port), "--kv-cache-dtype",
                              kv_cache_dtype(), *SERVER_ARGS, *extra_args],
        log, pythonpath=HERE)


def inspect_log(log: str) -> dict:
    return {"cuda_graphs": e2e_common.cuda_graphs_captured("vllm", log),
            "model_runner": "V2" if "Using V2 Model Runner" in log else "V1",
            "backend_lines": [line[-160:] for line in log.splitlines() if re.search(r"Using \S+ backend", line)][:4]}


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


def run_backend(client, mode: str, reference: dict | None) -> dict:
    result = {}
    result["completions"] = parallel(complete, [(client, p, GEN_TOKENS) for p in COMPLETION_PROMPTS])
    result["chat"] = parallel(chat, [(client, p, CHAT_TOKENS) for p in CHAT_PROMPTS])
    if mode == "default":
        result.update(decode_speeds(client, (1, 64)))
        return result
    ref = reference or result
    result["forced_completions"] = parallel(complete, [(client, p, GEN_TOKENS, toks) for p, (toks, _) in
                                                        zip(COMPLETION_PROMPTS, ref["completions"])])
    result["forced_chat"] = parallel(chat, [(client, p, CHAT_TOKENS, toks) for p, (toks, _) in
                                             zip(CHAT_PROMPTS, ref["chat"])])
    return result


def run(tp: int, workdir: Path, mode: str = "default", backends=BACKENDS, on_up=None) -> dict:
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    model = checkpoint(workdir / "tiny_lmhead02")
    kv = kv_cache_dtype()
    tag = f"tp{tp}_{mode}{kv_tag(kv)}"
    backends, errors = serve_each(
        backends, REFERENCE,
        start=lambda b: start_server(model, b, tp, workdir / f"server_{b}_{tag}.log",
                                     FORCED_ARGS if mode == "forced" else ()),
        exercise=lambda client, backend, reference: run_backend(client, mode, reference),
        inspect_log=inspect_log, done_file=lambda b: workdir / f"result_{b}_{tag}.json",
        label=f"tp{tp} {mode} kv {kv}", startup_timeout=400, on_up=on_up)
    results = {"tp": tp, "mode": mode, "kv_cache_dtype": kv, "backends": backends, "errors": errors}
    results["summary"] = summarize(results)
    return results


def summarize(results: dict) -> dict:
    return e2e_common.summarize(results, BACKENDS, REFERENCE, ("cuda_graphs", "model_runner", "backend_lines"))


def main() -> int:
    return e2e_common.driver_main(run, __doc__.split("\n\n")[0], Path("/tmp/mla_e2e"), BACKENDS, modes=MODES)


if __name__ == "__main__":
    sys.exit(main())
