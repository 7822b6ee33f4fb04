"""Is a vLLM server's decode rate its engine's or its streaming path's? One server (a backend of choice) on
benchmarks/bench_serving.py's checkpoint; per concurrency c, c prompts of --prompt-len random tokens decoded
  - streamed, read as bench_serving reads them (e2e_common.decode_rate), and
  - not streamed: c x (long - short) tokens / (T(long) - T(short)), prefill and request overhead cancelling out.
The same rate both ways means the engine sets it. The processes' CPU time (ps) is sampled while each runs.

    python integration_tests/vllm_step_probe.py --out OUT_DIR [--backend CUSTOM] [--concurrency 64 1] [--model DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "benchmarks"), str(HERE)]
import bench_serving  # noqa: E402
import e2e_common  # noqa: E402
import host_cpus  # noqa: E402

SERVED = "m"


def sample_cpu(stop: threading.Event, lines: list[str], t0: float) -> None:
    while not stop.is_set():
        out = subprocess.run(["ps", "-eo", "pid,pcpu,cputime,rss,comm", "--sort=-pcpu"], capture_output=True,
                             text=True).stdout
        lines.append(f"t={time.monotonic() - t0:.1f}\n" + "\n".join(out.splitlines()[:8]))
        stop.wait(2)


def with_cpu_samples(path: Path, fn):
    stop, lines = threading.Event(), []
    sampler = threading.Thread(target=sample_cpu, args=(stop, lines, time.monotonic()))
    sampler.start()
    try:
        return fn()
    finally:
        stop.set()
        sampler.join()
        path.write_text("\n\n".join(lines))


def blocking_round(base_url: str, prompts: list[list[int]], max_tokens: int) -> float:
    """Seconds until every one of `prompts`, sent at once without streaming, has its max_tokens."""
    import httpx

    def body(prompt):
        return {"model": SERVED, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "ignore_eos": True}

    with httpx.Client(base_url=base_url, timeout=600, limits=httpx.Limits(max_connections=len(prompts) + 4)) as http:
        start = time.perf_counter()
        for response in e2e_common.parallel(lambda p: http.post("completions", json=body(p)), [(p,) for p in prompts]):
            response.raise_for_status()
        return time.perf_counter() - start


def add_probe_args(parser: argparse.ArgumentParser) -> None:
    """What a step probe is given: where to write, which backend, the prompts, the two round lengths."""
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="CUSTOM")
    parser.add_argument("--prompt-len", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 1])
    parser.add_argument("--short", type=int, default=128)
    parser.add_argument("--long", type=int, default=384)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_bench_serving"))
    parser.add_argument("--model", type=Path, help="checkpoint directory (default: bench_serving's, in --workdir)")
    parser.add_argument("--num-heads", type=int, help="query heads of the generated checkpoint (bench_serving's)")
    parser.add_argument("--num-layers", type=int, help="layers of the generated checkpoint (bench_serving's)")
    parser.set_defaults(kv_cache_dtype="auto")   # bench_serving's checkpoint choice reads it; these tools serve bf16
    parser.add_argument("--cpus", default="auto", type=host_cpus.check_policy,
                        help="as bench_serving's --cpus: 'auto' (the host's fast cores), 'all' or a core list")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_probe_args(parser)
    args = parser.parse_args()
    print(f"host: {host_cpus.describe(host_cpus.pin(args.cpus))}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model = bench_serving.resolve_model(args)
    vocab_size, special = e2e_common.vocabulary(model)
    context = args.prompt_len + args.long + 128

    def command(port: int) -> list[str]:
        return e2e_common.engine_command("vllm", sys.executable, model, args.backend, port, context_length=context,
                                         max_batch=max(args.concurrency), served_name=SERVED, mem_fraction=0.7,
                                         extra=["--stream-interval", "8"])

    server = e2e_common.start_engine_server("vllm", command, args.out / f"server_{args.backend}.log")
    try:
        print(f"{args.backend} up in {server.wait(900):.0f} s", flush=True)
        base_url = server.base_url + "/v1/"
        for c in args.concurrency:
            prompts = bench_serving.prompts(vocab_size, special, args.prompt_len, c, 0)
            e2e_common.stream_round(base_url, SERVED, prompts, 16)   # warm-up: prefix cache, graphs
            rate = with_cpu_samples(args.out / f"cpu_streamed_c{c}.txt", lambda: e2e_common.decode_rate(
                *e2e_common.stream_round(base_url, SERVED, prompts, args.long - args.short)))
            short = blocking_round(base_url, prompts, args.short)
            long = with_cpu_samples(args.out / f"cpu_blocking_c{c}.txt",
                                    lambda: blocking_round(base_url, prompts, args.long))
            scalars = {k: v for k, v in (rate or {}).items() if not isinstance(v, list)}
            print(f"c={c} streamed: {json.dumps(scalars)}", flush=True)
            print(f"c={c} non-streamed: T{args.short} {short:.2f} s, T{args.long} {long:.2f} s -> "
                  f"{c * (args.long - args.short) / (long - short):.0f} tok/s", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
