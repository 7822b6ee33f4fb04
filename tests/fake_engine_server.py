"""A stand-in for an engine's OpenAI server, for the CPU tests of the e2e drivers (integration_tests/*_e2e.py).

    python fake_engine_server.py --port P --flavor NAME [--fail]

Greedy token ids are a function of the prompt, except that flavors other than "flashmla" flip one token in every
third prompt (at a position set by the flavor), as a second attention backend's rounding would. A request with
SGLang's `custom_params.force_tokens` returns those ids and appends, like integration_tests/sglang_force_tokens.py,
one JSON line per step to `custom_params.log`.<pid> with a logprob that differs from flashmla's by the flavor's
offset. A streamed completion sends a chunk with the token count so far every STREAM_INTERVAL tokens, at
TOKEN_S seconds per token (what e2e_common.decode_speed reads). It prints SGLang's ready line, answers /health,
and keeps a child process (so stopping must reach the whole process group). --fail exits at once with an error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLIP_AT = {"flashmla": None, "triton": 5, "mla_backend": 9}
LOGPROB_OFFSET = {"flashmla": 0.0, "triton": 0.004, "mla_backend": 0.002}
STREAM_INTERVAL, TOKEN_S = 8, 0.004   # slow enough that 64 requests started on a busy 2-core runner overlap


def greedy(prompt: str, n: int, flavor: str) -> list[int]:
    seed = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    ids = [(seed >> (i % 200)) % 1000 for i in range(n)]
    flip = FLIP_AT.get(flavor)
    if flip is not None and seed % 3 == 0 and flip < n:
        ids[flip] = (ids[flip] + 1) % 1000
    return ids


class Handler(BaseHTTPRequestHandler):
    flavor = "flashmla"

    def log_message(self, *args):
        pass

    def _send(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, model: str, ids: list[int]) -> None:
        """Server-sent events until the connection closes (HTTP/1.0): usage in every chunk, then [DONE]."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for n in range(1, len(ids) + 1):
            time.sleep(TOKEN_S)
            if n == 1 or n % STREAM_INTERVAL == 0 or n == len(ids):
                chunk = {"id": "c", "object": "text_completion", "created": 0, "model": model,
                         "choices": [{"index": 0, "text": "x", "finish_reason": None}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def do_GET(self):
        self._send({"ok": True} if self.path == "/health" else {"error": "no"}, 200 if self.path == "/health" else 404)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = request["max_tokens"]
        prompt = request["prompt"] if "prompt" in request else request["messages"][-1]["content"]
        prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)   # token ids (bench_serving's prompts)
        params = request.get("custom_params") or {}
        if "force_tokens" in params:
            ids = params["force_tokens"][:n]
            with open(f"{params['log']}.{os.getpid()}", "a") as f:
                for step, token in enumerate(ids):
                    logprob = -1.0 - (token % 7) / 10 + LOGPROB_OFFSET[self.flavor]
                    f.write(json.dumps({"id": params["id"], "step": step, "token": token, "logprob": logprob}) + "\n")
        else:
            ids = greedy(prompt, n, self.flavor)
        usage = {"prompt_tokens": 1, "completion_tokens": len(ids), "total_tokens": len(ids) + 1}
        if request.get("stream"):
            self._stream(request["model"], ids)
        elif self.path == "/v1/completions":
            choice = {"index": 0, "text": "", "finish_reason": "length", "logprobs": None, "token_ids": ids}
            self._send({"id": "c", "object": "text_completion", "created": 0, "model": request["model"],
                        "choices": [choice], "usage": usage})
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "length",
                      "token_ids": ids}
            self._send({"id": "c", "object": "chat.completion", "created": 0, "model": request["model"],
                        "choices": [choice], "usage": usage})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--flavor", default="flashmla")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--child-pid-file")
    args = parser.parse_args()
    if args.fail:
        sys.exit("fake engine: failing on purpose")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    if args.child_pid_file:
        with open(args.child_pid_file, "w") as f:
            f.write(str(child.pid))
    Handler.flavor = args.flavor
    ThreadingHTTPServer.request_queue_size = 256  # the drivers send 64 requests at once
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("The server is fired up and ready to roll!", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
