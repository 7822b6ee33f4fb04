"""End to end through `python -m sglang.launch_server` and the OpenAI client: the tiny DeepSeek-V2-shaped
checkpoint served with each attention backend in turn (one server at a time, CUDA graphs on, page size 64), the
same prompts sent to each:
  - greedy continuations of COMPLETION_PROMPTS (/v1/completions) and CHAT_PROMPTS (/v1/chat/completions);
  - the reference backend's greedy token ids forced back through every backend by sglang_force_tokens.ForceTokens
    (a custom logit processor), which records each forced token's logprob from the raw logits: the same token
    sequences scored by every backend, decode step by decode step;
  - decode tokens/s at batch 1 and 64 (e2e_common.decode_speeds: streamed, read while all requests decode; not
    measured, with the reason, where they never decode together).
Every server runs with --disable-overlap-schedule (the processor counts steps by the tokens already returned).
Each backend's results are kept in the work folder, and a later run with the same folder reuses them.

    python integration_tests/sglang_e2e.py --tp 1 --out e2e.json   (test_sglang_e2e.py asserts on it)

MLA_E2E_KV_CACHE_DTYPE=fp8_e4m3 serves every backend with `--kv-cache-dtype fp8_e4m3` (flashmla, triton and ours
all read SGLang's fp8 MLA pool; the tiny model's 16 heads are within our fp8 kernel's 32 query rows at TP 1 and 2);
its logs and results are kept apart from the bf16 run's (file names end in _fp8_e4m3), and our server's log must
say it read an fp8 cache.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import e2e_common
from e2e_common import (CHAT_PROMPTS, CHAT_TOKENS, COMPLETION_PROMPTS, GEN_TOKENS, MODEL_NAME, Server, checkpoint,
                        decode_speeds, parallel, serve_each)

HERE = Path(__file__).resolve().parent
REFERENCE = "flashmla"
BACKENDS = ("flashmla", "triton", "mla_backend")
CONTEXT_LENGTH, MAX_RUNNING = 4096, 64
SERVER_ARGS = ("--page-size", "64", "--dtype", "bfloat16", "--context-length", str(CONTEXT_LENGTH),
               "--max-running-requests", str(MAX_RUNNING), "--cuda-graph-max-bs-decode", str(MAX_RUNNING),
               "--disable-prefill-cuda-graph", "--mem-fraction-static", "0.4",
               "--disable-radix-cache", "--random-seed", "0", "--served-model-name", MODEL_NAME, "--host", "127.0.0.1",
               "--enable-custom-logit-processor", "--disable-overlap-schedule", "--sampling-backend", "pytorch",
               "--stream-interval", "8")
# SGLang's flashmla backend prefills an fp8 pool by converting the layer's whole pool to bf16 (a 55 GiB allocation at
# --mem-fraction-static 0.4 on the H200, out of memory): an fp8 run caps the pool at what its requests can use.
FP8_POOL_ARGS = ("--max-total-tokens", str(MAX_RUNNING * CONTEXT_LENGTH))
OUR_BACKEND_LINE = "mla_backend: decode"
OUR_FP8_LINE = "fp8 (e4m3) KV cache"   # in our backend's start-up line when the pool is fp8


def kv_cache_dtype() -> str:
    """--kv-cache-dtype for every server of a run: $MLA_E2E_KV_CACHE_DTYPE (auto, fp8_e4m3), default auto."""
    return os.environ.get("MLA_E2E_KV_CACHE_DTYPE", "auto")


def kv_tag(kv: str) -> str:
    """The suffix of a run's file names: none for the model's dtype, _fp8_e4m3 for an fp8 cache."""
    return "" if kv == "auto" else f"_{kv}"


def start_server(model: Path, backend: str, tp: int, log: Path) -> Server:
    return e2e_common.start_engine_server(
        "sglang", lambda port: [sys.executable, "-m", "sglang.launch_server", "--model-path", str(model),
                                "--attention-backend", backend, "--tp-size", str(tp), "--port", str(port),
                                "--kv-cache-dtype", kv_cache_dtype(), *SERVER_ARGS,
                                *(FP8_POOL_ARGS if kv_cache_dtype() != "auto" else ())], log, pythonpath=HERE)


def inspect_log(log: str) -> dict:
    return {"cuda_graphs": e2e_common.cuda_graphs_captured("sglang", log), "our_kernel": OUR_BACKEND_LINE in log,
            "our_fp8_kv": OUR_FP8_LINE in log}


def _forcing(forced: list[int] | None, log: Path, key: str) -> dict:
    if forced is None:
        return {}
    from sglang_force_tokens import ForceTokens

    return {"custom_logit_processor": ForceTokens.to_str(),
            "custom_params": {"force_tokens": forced, "log": str(log), "id": key}}


def complete(client, prompt: str, max_tokens: int, forced: list[int] | None = None, log: Path | None = None,
             key: str = "") -> list[int]:
    extra = {"return_token_ids": True, "ignore_eos": True, **_forcing(forced, log, key)}
    r = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=max_tokens, temperature=0.0,
                                  extra_body=extra)
    return list(r.choices[0].token_ids)


def chat(client, prompt: str, max_tokens: int, forced: list[int] | None = None, log: Path | None = None,
         key: str = "") -> list[int]:
    extra = {"return_token_ids": True, "ignore_eos": True, **_forcing(forced, log, key)}
    r = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": prompt}],
                                       max_tokens=max_tokens, temperature=0.0, extra_body=extra)
    return list(r.choices[0].token_ids)


def read_logprobs(log: Path) -> dict[str, list[float]]:
    """{request id: logprobs by step} from the files ForceTokens wrote for `log` (LOG.<pid>, one per TP rank, the
    same lines in each)."""
    steps: dict[str, dict[int, float]] = {}
    for path in sorted(log.parent.glob(log.name + ".*")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            steps.setdefault(entry["id"], {}).setdefault(entry["step"], entry["logprob"])
    return {key: [by_step[s] for s in sorted(by_step)] for key, by_step in steps.items()}


def run_backend(client, reference: dict | None, log: Path) -> dict:
    result = {"completions": [(ids, []) for ids in parallel(complete, [(client, p, GEN_TOKENS)
                                                                        for p in COMPLETION_PROMPTS])],
              "chat": [(ids, []) for ids in parallel(chat, [(client, p, CHAT_TOKENS) for p in CHAT_PROMPTS])]}
    ref = reference or result
    for stale in log.parent.glob(log.name + ".*"):  # from a run of this backend that was cut short
        stale.unlink()
    forced_completions = parallel(complete, [(client, p, GEN_TOKENS, toks, log, f"c{i}") for i, (p, (toks, _)) in
                                             enumerate(zip(COMPLETION_PROMPTS, ref["completions"]))])
    forced_chat = parallel(chat, [(client, p, CHAT_TOKENS, toks, log, f"h{i}") for i, (p, (toks, _)) in
                                  enumerate(zip(CHAT_PROMPTS, ref["chat"]))])
    logprobs = read_logprobs(log)
    result["forced_completions"] = [(ids, logprobs.get(f"c{i}", [])) for i, ids in enumerate(forced_completions)]
    result["forced_chat"] = [(ids, logprobs.get(f"h{i}", [])) for i, ids in enumerate(forced_chat)]
    result.update(decode_speeds(client, (1, 64)))
    return result


def run(tp: int, workdir: Path, backends=BACKENDS, on_up=None) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    model = checkpoint(workdir / "tiny_lmhead02")
    kv = kv_cache_dtype()
    tag = f"tp{tp}{kv_tag(kv)}"
    backends, errors = serve_each(
        backends, REFERENCE,
        start=lambda b: start_server(model, b, tp, workdir / f"server_{b}_{tag}.log"),
        exercise=lambda client, backend, reference: run_backend(
            client, reference, workdir / f"forced_logprobs_{backend}_{tag}.jsonl"),
        inspect_log=inspect_log, done_file=lambda b: workdir / f"result_{b}_{tag}.json",
        label=f"sglang tp{tp} kv {kv}", on_up=on_up)
    results = {"tp": tp, "kv_cache_dtype": kv, "backends": backends, "errors": errors}
    results["summary"] = summarize(results)
    return results


def summarize(results: dict) -> dict:
    return e2e_common.summarize(results, BACKENDS, REFERENCE, ("cuda_graphs", "our_kernel", "our_fp8_kv", "startup_s"))


def main() -> int:
    return e2e_common.driver_main(run, __doc__.split("\n\n")[0], Path("/tmp/mla_sglang_e2e"), BACKENDS)


if __name__ == "__main__":
    sys.exit(main())
