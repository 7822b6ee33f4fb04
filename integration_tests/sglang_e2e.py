"""End to end through `python -m sglang.launch_server` and the OpenAI client: the tiny DeepSeek-V2-shaped
checkpoint served with each attention backend in turn (one server at a time, CUDA graphs on, page size 64), the
same prompts sent to each:
  - greedy continuations of COMPLETION_PROMPTS (/v1/completions) and CHAT_PROMPTS (/v1/chat/completions);
  - the reference backend's greedy token ids forced back through every backend by sglang_force_tokens.ForceTokens
    (a custom logit processor), which records each forced token's logprob from the raw logits: the same token
    sequences scored by every backend, decode step by decode step;
  - decode tokens/s at batch 1 and 64 ((N_LONG - N_SHORT) extra tokens per request over the extra wall time).
Every server runs with --disable-overlap-schedule (the processor counts steps by the tokens already returned).
Each backend's results are kept in the work folder, and a later run with the same folder reuses them.

    python integration_tests/sglang_e2e.py --tp 1 --out e2e.json   (test_sglang_e2e.py asserts on it)
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

from e2e_common import (CHAT_PROMPTS, CHAT_TOKENS, COMPLETION_PROMPTS, GEN_TOKENS, MODEL_NAME, checkpoint, compare,
                        decode_speed, free_port, parallel)

HERE = Path(__file__).resolve().parent
REFERENCE = "flashmla"
BACKENDS = ("flashmla", "triton", "mla_backend")
SERVER_ARGS = ("--page-size", "64", "--dtype", "bfloat16", "--context-length", "4096", "--max-running-requests", "64",
               "--cuda-graph-max-bs-decode", "64", "--disable-prefill-cuda-graph", "--mem-fraction-static", "0.4",
               "--disable-radix-cache", "--random-seed", "0", "--served-model-name", MODEL_NAME, "--host", "127.0.0.1",
               "--enable-custom-logit-processor", "--disable-overlap-schedule", "--sampling-backend", "pytorch")
READY = "The server is fired up and ready to roll"
GRAPHS_CAPTURED = re.compile(r"Capture [\w ]*decode CUDA graph end|Capture cuda graph end", re.IGNORECASE)
OUR_BACKEND_LINE = "mla_backend: decode"


class Server:
    def __init__(self, model: Path, backend: str, tp: int, port: int, log: Path):
        self.backend, self.base_url, self.log_path = backend, f"http://127.0.0.1:{port}", log
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(model), "--attention-backend",
               backend, "--tp-size", str(tp), "--port", str(port), *SERVER_ARGS]
        self.log = open(log, "w")
        self.log.write(" ".join(cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def wait(self, timeout: float = 600) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                break
            if READY in self.log_path.read_text():
                return time.monotonic() - t0
            time.sleep(1)
        self.stop()
        tail = self.log_path.read_text()[-6000:]
        raise RuntimeError(f"sglang.launch_server --attention-backend {self.backend} did not come up:\n{tail}")

    def stop(self) -> None:
        from mla_backend.serve import _stop

        _stop(self.proc)
        self.log.close()


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


def run_backend(client, reference: dict | None, log: Path) -> dict:
    from sglang_force_tokens import read_logprobs

    result = {"completions": [(ids, []) for ids in parallel(complete, [(client, p, GEN_TOKENS)
                                                                        for p in COMPLETION_PROMPTS])],
              "chat": [(ids, []) for ids in parallel(chat, [(client, p, CHAT_TOKENS) for p in CHAT_PROMPTS])]}
    ref = reference or result
    forced_completions = parallel(complete, [(client, p, GEN_TOKENS, toks, log, f"c{i}") for i, (p, (toks, _)) in
                                             enumerate(zip(COMPLETION_PROMPTS, ref["completions"]))])
    forced_chat = parallel(chat, [(client, p, CHAT_TOKENS, toks, log, f"h{i}") for i, (p, (toks, _)) in
                                  enumerate(zip(CHAT_PROMPTS, ref["chat"]))])
    logprobs = read_logprobs(str(log))
    result["forced_completions"] = [(ids, logprobs.get(f"c{i}", [])) for i, ids in enumerate(forced_completions)]
    result["forced_chat"] = [(ids, logprobs.get(f"h{i}", [])) for i, ids in enumerate(forced_chat)]
    result["decode_tokens_per_s"] = {str(b): decode_speed(client, b) for b in (1, 64)}
    return result


def run(tp: int, workdir: Path, backends=BACKENDS) -> dict:
    from openai import OpenAI

    workdir.mkdir(parents=True, exist_ok=True)
    model = checkpoint(workdir / "tiny_lmhead02")
    results = {"tp": tp, "backends": {}, "errors": {}}
    for backend in sorted(backends, key=lambda b: b != REFERENCE):
        done = workdir / f"result_{backend}_tp{tp}.json"
        if done.is_file():  # a run cut short (per-call time limits) resumes where it stopped
            results["backends"][backend] = json.loads(done.read_text())
            continue
        server = Server(model, backend, tp, free_port(), workdir / f"server_{backend}_tp{tp}.log")
        try:
            startup = server.wait()
            client = OpenAI(base_url=server.base_url + "/v1", api_key="none", timeout=600, max_retries=0)
            t0 = time.monotonic()
            result = run_backend(client, results["backends"].get(REFERENCE),
                                 workdir / f"forced_logprobs_{backend}_tp{tp}.jsonl")
            result["startup_s"], result["requests_s"] = startup, time.monotonic() - t0
        except Exception as exc:  # one backend failing must not hide the others' results
            results["errors"][backend] = f"{type(exc).__name__}: {exc}"[-4000:]
            print(f"[tp{tp}] {backend} FAILED: {results['errors'][backend]}", flush=True)
            continue
        finally:
            server.stop()
        log = server.log_path.read_text()
        result["cuda_graphs"] = bool(GRAPHS_CAPTURED.search(log))
        result["our_kernel"] = OUR_BACKEND_LINE in log
        results["backends"][backend] = result
        done.write_text(json.dumps(result))
        print(f"[tp{tp}] {backend}: up in {startup:.0f} s, requests {result['requests_s']:.0f} s, "
              f"decode tok/s {result['decode_tokens_per_s']}", flush=True)
    results["summary"] = summarize(results)
    return results


def summarize(results: dict) -> dict:
    backends = {n: results["backends"][n] for n in BACKENDS if n in results["backends"]}
    summary = {"tp": results["tp"], "errors": results["errors"], **compare(backends, REFERENCE)}
    for key in ("cuda_graphs", "our_kernel", "startup_s"):
        summary[key] = {n: r[key] for n, r in backends.items()}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_sglang_e2e"))
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    results = run(args.tp, args.workdir, tuple(args.backends.split(",")))
    print(json.dumps(results["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
