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
import re
import subprocess
import sys
import time
from pathlib import Path

from e2e_common import (CHAT_PROMPTS, CHAT_TOKENS, COMPLETION_PROMPTS, GEN_TOKENS, MODEL_NAME, parallel, checkpoint,
                        compare, decode_speed, free_port)

HERE = Path(__file__).resolve().parent
REFERENCE = "FLASHMLA"
BACKENDS = ("FLASHMLA", "TRITON_MLA", "CUSTOM")
MODES = ("default", "forced")
SERVER_ARGS = ("--block-size", "64", "--dtype", "bfloat16", "--max-model-len", "4096", "--max-num-seqs", "64",
               "--gpu-memory-utilization", "0.4", "--no-enable-prefix-caching", "--seed", "0",
               "--served-model-name", MODEL_NAME)
FORCED_ARGS = ("--logits-processors", "force_tokens:ForceTokens")
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


def run_backend(client, mode: str, reference: dict | None) -> dict:
    result = {}
    result["completions"] = parallel(complete, [(client, p, GEN_TOKENS) for p in COMPLETION_PROMPTS])
    result["chat"] = parallel(chat, [(client, p, CHAT_TOKENS) for p in CHAT_PROMPTS])
    if mode == "default":
        result["decode_tokens_per_s"] = {str(b): decode_speed(client, b) for b in (1, 64)}
        return result
    ref = reference or result
    result["forced_completions"] = parallel(complete, [(client, p, GEN_TOKENS, toks) for p, (toks, _) in
                                                        zip(COMPLETION_PROMPTS, ref["completions"])])
    result["forced_chat"] = parallel(chat, [(client, p, CHAT_TOKENS, toks) for p, (toks, _) in
                                             zip(CHAT_PROMPTS, ref["chat"])])
    return result


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


def summarize(results: dict) -> dict:
    backends = {n: results["backends"][n] for n in BACKENDS if n in results["backends"]}
    summary = {"tp": results["tp"], "mode": results["mode"], **compare(backends, REFERENCE)}
    for key in ("cuda_graphs", "model_runner", "backend_lines"):
        summary[key] = {n: r[key] for n, r in backends.items()}
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
