"""Serving benchmark: decode tokens/s and time per output token of each engine's MLA attention backends, ours
and the built-in ones, served one after another on the same model and the same requests.

For each engine (SGLang, vLLM) and each of its backends, one server is started (integration_tests/e2e_common.py's
Server: its own process group, log kept, stopped with its workers), then for each prompt length and concurrency
`c`, c requests with the same random token-id prompts are sent at once through the OpenAI completions API
(greedy, ignore_eos): a warm-up round, then --repeats streamed rounds, each chunk carrying the request's token
count so far (`continuous_usage_stats`). decode tokens/s is read in each round's steady window, from the moment
the last request has its first token (every prompt prefilled) to the moment the first one has its last (none
finished): there every engine step is a decode step of all c requests, whatever the prefills before cost and
however the engine interleaved them. Time per output token (TPOT) = c / decode tokens/s: the step time at that
batch, as each request sees it. (An earlier version took c * N / (LONG - SHORT round time); it counted decode
steps that ran beside other requests' prefills and reported faster-than-possible steps: 1.0 ms at 16 x 16k tokens
with 128 heads, whose attention alone is 1.5 ms at 580 TFLOP/s.)

    python benchmarks/bench_serving.py [--model DIR] [--engines sglang,vllm] [--prompt-lens 4096 16384 32768]
        [--concurrency 1 16 64] [--max-tokens-in-flight N] [--decode-tokens 256] [--stream-interval 8]
        [--tp 1] [--kv-cache-dtype auto|fp8] [--num-heads N] [--num-layers N] [--cpus auto|all|0,3,5-7] [--interleave]
        [--card NAME] [--commit SHA] [--out-dir benchmarks/results]
        [--merge EARLIER.json] [--dry-run]
    python benchmarks/bench_serving.py --render RESULTS.json ...   (the .md again from the JSON)

Without --model it serves the attention-dominated DeepSeek-V3-shaped checkpoint of mla_backend/models/serving_model.py
(generated into --workdir the first time): 128 query heads (DeepSeek-V3 at TP 1), or 16 with --kv-cache-dtype fp8
(DeepSeek-V3 at TP 8 as one GPU sees it: fp8 serves up to 32 query rows a GPU), or --num-heads. Results:
<out-dir>/serving_<card>.json and .md (serving_<card>_fp8.* with --kv-cache-dtype fp8: every backend of each engine
on its fp8 e4m3 cache, each engine's flag spelling), rewritten after each backend; the per-backend results and
server logs stay in --workdir, and a run cut short resumes with the (engine, backend) pairs it has not finished for
the same workload. An engine whose Python package is missing (or whose --<engine>-python is not given) is reported
as skipped. Run it where nothing else uses the GPUs. The
servers run on the host's fast cores (integration_tests/host_cpus.py): at one request a decode step is host-bound,
and on the lent H200 box half the cores ran Python ~1.75x slower than the other half. They start on every core and
are pinned once up, since an engine's first start on a machine compiles kernels with a job per core.

--interleave serves all of an engine's backends at once instead, each server with 1/n of --mem-fraction, and
alternates each point's rounds between them (round r starts one server further), so that a host that slows down
or speeds up during the run does so for every backend alike: served one after another, the same backend's
decode rate moved by up to 20% between two servers of one hour and by up to 32% between rounds of one server
(H200, vLLM 0.26). An interleaved run cut short resumes with the points it has not finished: each point is kept in
--workdir as soon as it is measured on every server, and a rerun of the same workload starts the servers again and
measures only the rest.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "integration_tests"))
sys.path.insert(0, str(ROOT))
import e2e_common  # noqa: E402
import host_cpus  # noqa: E402
from provenance import git_commit  # noqa: E402

from mla_backend.cli import doctor  # noqa: E402

SERVED_NAME = "bench-model"
ENGINES = {
    # engine: its MLA attention backends on Hopper, the engine's default first and ours last. SGLang's `fa3`
    # (its Hopper default) is left out of the defaults: its library is too big for our offline bundle.
    "sglang": ("flashmla", "flashinfer", "triton", "mla_backend"),
    "vllm": ("FLASH_ATTN_MLA", "FLASHMLA", "TRITON_MLA", "CUSTOM"),
}
OURS = e2e_common.OUR_BACKEND
# --kv-cache-dtype fp8 as each engine spells the e4m3 cache (mla_backend.engine_limits.FP8_KV_CACHE_DTYPE_NAMES).
FP8_KV_FLAG = {"sglang": "fp8_e4m3", "vllm": "fp8"}
# The generated checkpoint's query heads on an fp8 cache: DeepSeek-V3 at TP 8 (128 / 8), the deployment that fp8
# serves (our fp8 path refuses more than 32 query rows a GPU, as the engines' startup check says).
FP8_NUM_HEADS = 16


# ---------------------------------------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint directory (default: mla_backend.models.serving_model's)")
    parser.add_argument("--engines", default="sglang,vllm", help="comma-separated, of: " + ", ".join(ENGINES))
    parser.add_argument("--sglang-backends", default=",".join(ENGINES["sglang"]))
    parser.add_argument("--vllm-backends", default=",".join(ENGINES["vllm"]))
    parser.add_argument("--prompt-lens", type=int, nargs="+", default=[4096, 16384, 32768],
                        help="prompt lengths in tokens (random token ids)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--max-tokens-in-flight", type=int,
                        help="skip the (prompt length, concurrency) points whose prompt tokens in all (length x c) "
                             "exceed this: their prefill, not the decode measured, would take the time")
    parser.add_argument("--warmup-tokens", type=int, default=16, help="tokens of the warm-up round per point")
    parser.add_argument("--decode-tokens", type=int, default=256, help="tokens each measured request asks for")
    parser.add_argument("--max-decode-tokens", type=int, default=4096,
                        help="--decode-tokens doubles up to this while the steady window is too short")
    parser.add_argument("--min-window-tokens", type=int, default=128,
                        help="tokens each request must decode while all of the point's requests decode together")
    parser.add_argument("--repeats", type=int, default=2, help="measured rounds per point, their median kept")
    parser.add_argument("--stream-interval", type=int, default=8,
                        help="the engines' --stream-interval (tokens per streamed chunk), the same for every backend")
    parser.add_argument("--tp", type=int, default=1, help="tensor parallel size")
    parser.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto",
                        help="fp8: every backend on its engine's fp8 (e4m3) KV cache; results in serving_<card>_fp8.*")
    parser.add_argument("--num-heads", type=int,
                        help="query heads of the generated checkpoint (without --model): default 128, DeepSeek-V3 at "
                             f"TP 1; with --kv-cache-dtype fp8, {FP8_NUM_HEADS}: DeepSeek-V3 at TP 8 as one GPU sees "
                             "it, within the query rows our fp8 path serves")
    parser.add_argument("--num-layers", type=int,
                        help="layers of the generated checkpoint (without --model): default serving_model's 32, "
                             "enough that a decode step's GPU work outlasts the server's host work per step "
                             "(DeepSeek-V3 has 61)")
    parser.add_argument("--mem-fraction", type=float, default=0.7,
                        help="SGLang --mem-fraction-static / vLLM --gpu-memory-utilization (at 0.85 SGLang's "
                             "flashinfer prefill ran out of memory for its 6 GiB chunked-prefix buffer)")
    parser.add_argument("--no-prefix-cache", action="store_true",
                        help="every round prefills its prompts again (slower; the default reuses them)")
    parser.add_argument("--sglang-python", help="the Python of SGLang's environment (default: this one)")
    parser.add_argument("--vllm-python", help="the Python of vLLM's environment (default: this one)")
    parser.add_argument("--sglang-args", default="", help="more `sglang.launch_server` arguments")
    parser.add_argument("--vllm-args", default="", help="more `vllm serve` arguments")
    parser.add_argument("--startup-timeout", type=float, default=1200)
    parser.add_argument("--card", help="results file name part (default: from nvidia-smi, e.g. h200)")
    parser.add_argument("--commit", help="this repository's commit to record (default: git rev-parse HEAD; give it "
                        "where the tree is a copy without .git)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mla_bench_serving"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", default="auto", type=host_cpus.check_policy,
                        help="cores for this driver and the servers it starts: 'auto' (the fast ones of this host, "
                             "timed at the start), 'all' (no pinning) or a list such as 0,3,5-7")
    parser.add_argument("--interleave", action="store_true",
                        help="all of an engine's backends served at once, each point's rounds alternating between them")
    parser.add_argument("--merge", type=Path, help="an earlier results JSON of the same workload (e.g. the other "
                        "engine's, run from another environment): its engines not run now are kept in the report")
    parser.add_argument("--dry-run", action="store_true", help="print the server commands and the workload only")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="rewrite the .md next to each results JSON from its rounds (no server, no GPU)")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    args.engines = engines
    if args.num_heads is not None and (args.model is not None or args.num_heads < 1):
        parser.error("--num-heads: a positive count, for the generated checkpoint (not with --model)")
    if args.num_layers is not None and (args.model is not None or args.num_layers < 1):
        parser.error("--num-layers: a positive count, for the generated checkpoint (not with --model)")
    for name in ("prompt_lens", "concurrency"):
        if any(v < 1 for v in getattr(args, name)):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not points(args):
        parser.error("--max-tokens-in-flight leaves no (prompt length, concurrency) point to measure")
    if min(args.warmup_tokens, args.repeats, args.stream_interval) < 1 or args.min_window_tokens < 2 \
            or not args.min_window_tokens < args.decode_tokens <= args.max_decode_tokens:
        parser.error("need --warmup-tokens, --repeats, --stream-interval >= 1 and "
                     "2 <= --min-window-tokens < --decode-tokens <= --max-decode-tokens")
    return args


def points(args: argparse.Namespace) -> list[tuple[int, int]]:
    """The (prompt length, concurrency) points measured, in order."""
    cap = args.max_tokens_in_flight
    return [(length, c) for length in args.prompt_lens for c in args.concurrency if cap is None or length * c <= cap]


def backends_of(args: argparse.Namespace, engine: str) -> tuple[str, ...]:
    return tuple(b for b in getattr(args, f"{engine}_backends").split(",") if b)


def workload(args: argparse.Namespace) -> dict:
    """What every backend is given; results measured under another workload are not reused."""
    return {"points": [list(point) for point in points(args)], "warmup_tokens": args.warmup_tokens,
            "decode_tokens": args.decode_tokens, "max_decode_tokens": args.max_decode_tokens,
            "min_window_tokens": args.min_window_tokens, "stream_interval": args.stream_interval,
            "repeats": args.repeats, "tp": args.tp, "seed": args.seed,
            "prefix_cache": not args.no_prefix_cache, "mem_fraction": args.mem_fraction, "cpus": args.cpus,
            # only when set, so that the keys of results measured before the option existed still match
            **({"kv_cache_dtype": args.kv_cache_dtype} if args.kv_cache_dtype != "auto" else {}),
            **({"interleave": True} if args.interleave else {})}


def model_fingerprint(model: Path) -> str:
    """Hash of the checkpoint's config and tokenizer: results of another checkpoint at the same path are not reused
    (the tokenizer changes what an engine's detokenizer costs a step)."""
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        path = model / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


def workload_key(args: argparse.Namespace, model: Path) -> str:
    spec = json.dumps([str(model), model_fingerprint(model), workload(args), args.sglang_args, args.vllm_args],
                      sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:10]


def context_length(args: argparse.Namespace) -> int:
    """Longest prompt + LONG round's tokens, rounded up to a 64-token page, plus one page."""
    need = max(args.prompt_lens) + max(args.warmup_tokens, args.max_decode_tokens)
    return -(-need // 64) * 64 + 64


# ---------------------------------------------------------------------------------------------- servers


def engine_python(args: argparse.Namespace, engine: str) -> str | None:
    """The interpreter to run the engine with, or None when the engine is not installed in this one."""
    given = getattr(args, f"{engine}_python")
    if given:
        return given
    return sys.executable if importlib.util.find_spec(engine) is not None else None


def server_command(engine: str, python: str, model: Path, backend: str, args: argparse.Namespace,
                   port: int) -> list[str]:
    """The engine's serve command; with --interleave each of the engine's servers gets its share of the memory."""
    share = len(backends_of(args, engine)) if args.interleave else 1
    return e2e_common.engine_command(
        engine, python, model, backend, port, context_length=context_length(args), max_batch=max(args.concurrency),
        served_name=SERVED_NAME, tp=args.tp, mem_fraction=round(args.mem_fraction / share, 4), seed=args.seed,
        prefix_cache=not args.no_prefix_cache,
        extra=["--stream-interval", str(args.stream_interval), *kv_cache_args(engine, args),
               *beside_args(engine, args), *shlex.split(getattr(args, f"{engine}_args"))])


def beside_args(engine: str, args: argparse.Namespace) -> list[str]:
    """Servers sharing the host (--interleave): SGLang's scheduler spins a core while idle unless told to sleep
    (its `--sleep-on-idle`, waking on the next request); vLLM's engine core blocks on its input queue anyway."""
    return ["--sleep-on-idle"] if engine == "sglang" and args.interleave else []


def kv_cache_args(engine: str, args: argparse.Namespace) -> list[str]:
    return ["--kv-cache-dtype", FP8_KV_FLAG[engine]] if args.kv_cache_dtype == "fp8" else []


def start_server(engine: str, python: str, model: Path, backend: str, args: argparse.Namespace,
                 log: Path, beside_others: bool = False) -> e2e_common.Server:
    return e2e_common.start_engine_server(
        engine, lambda port: server_command(engine, python, model, backend, args, port), log,
        beside_others=beside_others)


def inspect_log(engine: str, log: str) -> dict:
    return {"cuda_graphs": e2e_common.cuda_graphs_captured(engine, log)}


# ---------------------------------------------------------------------------------------------- requests


def prompts(vocab_size: int, special: set[int], length: int, count: int, seed: int) -> list[list[int]]:
    """`count` prompts of `length` random token ids (the same for a given seed, length and count)."""
    rng = random.Random(f"{seed}-{length}-{count}")
    allowed = [i for i in range(min(vocab_size, 1 << 17)) if i not in special]
    return [[rng.choice(allowed) for _ in range(length)] for _ in range(count)]


def measure(client, batch: list[list[int]], args: argparse.Namespace) -> dict:
    """One (prompt length, concurrency) point: e2e_common.steady_decode (a warm-up round, then --repeats streamed
    rounds whose steady windows give the decode rate, the tokens asked for doubling up to --max-decode-tokens
    while a window is shorter than --min-window-tokens)."""
    return measure_on({"": str(client.base_url)}, batch, args)[""]


def measure_on(base_urls: dict[str, str], batch: list[list[int]], args: argparse.Namespace) -> dict[str, dict]:
    """measure on one or more servers ({name: base_url}), their rounds interleaved
    (e2e_common.steady_decode_together)."""
    rates = e2e_common.steady_decode_together(base_urls, SERVED_NAME, batch, args.decode_tokens,
                                              warmup_tokens=args.warmup_tokens, repeats=args.repeats,
                                              min_window_tokens=args.min_window_tokens,
                                              max_tokens_cap=args.max_decode_tokens)
    return {name: {"prompt_len": len(batch[0]), "concurrency": len(batch), **rate} for name, rate in rates.items()}


def point_line(point: dict) -> str:
    return (f"prompt {point['prompt_len']:6d} x {point['concurrency']:3d}: {decode_rate(point):10.1f} "
            f"decode tok/s, TPOT {tpot_ms(point):.3f} ms")


def run_backend(client, model: Path, args: argparse.Namespace) -> dict:
    vocab_size, special = e2e_common.vocabulary(model)
    measured = []
    for length, c in points(args):
        point = measure(client, prompts(vocab_size, special, length, c, args.seed), args)
        print(f"    {point_line(point)}", flush=True)
        measured.append(point)
    return {"points": measured}


def interleaved_runs(engine: str, python: str, model: Path, args: argparse.Namespace, workdir: Path, host: dict):
    """--interleave: every backend's server up at once, then each point measured on all of them with their rounds
    interleaved (e2e_common.steady_decode_together). A backend that does not start or fails a request goes to
    errors (with its server's last output) and the others go on. Yields (results, errors) as e2e_common.serve_each
    returns them after each point, so that a run cut short has written what it measured; each point is also kept
    in workdir (InterleavedPoints), so the run resumes with the points it has not finished."""
    servers, startup, errors = {}, {}, {}
    kept = InterleavedPoints(workdir / "interleaved_points.json")
    todo = [point for point in points(args) if not kept.has(point)]

    def fail(backend: str, error: str) -> None:
        errors[backend] = error[-4000:]
        print(f"[{engine}] {backend} FAILED: {errors[backend]}", flush=True)

    def report() -> tuple[dict[str, dict], dict[str, str]]:
        return kept.results(backends_of(args, engine), points(args)), dict(errors)

    if not todo:
        print(f"[{engine}] every point was measured by an earlier run ({kept.path})", flush=True)
        yield report()
        return
    if len(todo) < len(points(args)):
        print(f"[{engine}] resuming: {len(points(args)) - len(todo)} points from an earlier run ({kept.path})",
              flush=True)
    try:
        for backend in backends_of(args, engine):
            try:
                servers[backend] = start_server(engine, python, model, backend, args, workdir / f"server_{backend}.log",
                                                beside_others=bool(servers))
                startup[backend] = servers[backend].wait(args.startup_timeout)
                servers[backend].pin(host)
                print(f"[{engine}] {backend}: up in {startup[backend]:.0f} s", flush=True)
            except Exception as exc:  # one backend failing must not hide the others' results
                fail(backend, f"{type(exc).__name__}: {exc}")
                if backend in servers:
                    servers.pop(backend).stop()
        kept.add_servers(startup, {backend: inspect_log(engine, server.log_path.read_text())
                                   for backend, server in servers.items()})
        vocab_size, special = e2e_common.vocabulary(model)
        t0 = time.monotonic()
        for length, c in todo:
            batch = prompts(vocab_size, special, length, c, args.seed)
            measured = measure_together(servers, errors, batch, args, fail)
            for backend, point in measured.items():
                print(f"    {backend} {point_line(point)}", flush=True)
            if measured:
                kept.add((length, c), measured, time.monotonic() - t0)
                t0 = time.monotonic()
            yield report()
    finally:
        for server in servers.values():
            server.stop()


class InterleavedPoints:
    """An interleaved run's measured points, kept in a JSON file as each is measured: {"points": {"<prompt>x<c>":
    {backend: point}}, "startup_s": {backend: s}, "requests_s": s, "logs": {backend: inspect_log's}}."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else \
            {"points": {}, "startup_s": {}, "requests_s": 0.0, "logs": {}}

    @staticmethod
    def key(point: tuple[int, int]) -> str:
        return f"{point[0]}x{point[1]}"

    def has(self, point: tuple[int, int]) -> bool:
        return self.key(point) in self.data["points"]

    def add(self, point: tuple[int, int], measured: dict[str, dict], requests_s: float) -> None:
        """A point measured ({backend: point}) and the seconds its requests took (added up over the runs)."""
        self.data["points"][self.key(point)] = measured
        self.data["requests_s"] += requests_s
        self.save()

    def add_servers(self, startup: dict[str, float], logs: dict[str, dict]) -> None:
        """The servers of this run, once up: their start times and what their logs say (the latest run's)."""
        self.data["startup_s"].update(startup)
        self.data["logs"].update(logs)
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")

    def results(self, backends, order: list[tuple[int, int]]) -> dict[str, dict]:
        """Per backend, its kept points in `order`: those it was measured at, also where it failed later (a
        failed server measures no further point; the error is reported beside the results)."""
        out = {}
        for backend in backends:
            measured = [self.data["points"][self.key(p)][backend] for p in order
                        if backend in self.data["points"].get(self.key(p), {})]
            if measured:
                out[backend] = {"points": measured, "startup_s": self.data["startup_s"].get(backend),
                                "requests_s": self.data["requests_s"], **self.data["logs"].get(backend, {})}
        return out


def measure_together(servers: dict, errors: dict, batch: list[list[int]], args: argparse.Namespace,
                     fail) -> dict[str, dict]:
    """One point on every server not yet failed; a server whose request fails is failed and the point measured
    again without it."""
    while live := [backend for backend in servers if backend not in errors]:
        try:
            return measure_on({backend: servers[backend].base_url + "/v1/" for backend in live}, batch, args)
        except e2e_common.ServerFailed as exc:   # its output's end says why (a crash's traceback, an OOM)
            fail(exc.name, f"{exc}\n[{exc.name}'s last output]\n{servers[exc.name].log_tail(3000)}")
        except e2e_common.NoDecodeWindow as exc:   # as served one at a time: the backends measured fail
            for backend in live:
                fail(backend, f"{type(exc).__name__}: {exc}")
            return {}
    return {}


def engine_runs(engine: str, python: str, model: Path, args: argparse.Namespace, workdir: Path, host: dict):
    """(results, errors) of an engine's backends, each time there is more to write: after each point of an
    interleaved run (--interleave), or after each backend served one at a time. Each server is pinned once up."""
    if args.interleave:
        yield from interleaved_runs(engine, python, model, args, workdir, host)
        return
    for backend in backends_of(args, engine):
        yield e2e_common.serve_each(
            (backend,), backend,
            start=lambda b: start_server(engine, python, model, b, args, workdir / f"server_{b}.log"),
            exercise=lambda client, b, _reference: run_backend(client, model, args),
            inspect_log=lambda log: inspect_log(engine, log), done_file=lambda b: workdir / f"result_{b}.json",
            label=f"{engine}", startup_timeout=args.startup_timeout, on_up=lambda server: server.pin(host))


# ---------------------------------------------------------------------------------------------- results


def gpu_name() -> str:
    """The first GPU's name from nvidia-smi (no CUDA context in this process: the servers need the GPU)."""
    return (doctor.nvidia_smi().get("gpus") or [{}])[0].get("name", "unknown GPU")


def versions(python: str | None, *packages: str) -> dict[str, str | None]:
    """Each package's version in the environment of `python` (an engine and the torch it runs on), from one
    interpreter start; None for a package that is not installed there, or for all without `python`."""
    if python is None:
        return dict.fromkeys(packages)
    code = ("import importlib.metadata as m, json, sys\n"
            "def version(name):\n"
            "    try:\n        return m.version(name)\n"
            "    except m.PackageNotFoundError:\n        return None\n"
            "print(json.dumps({name: version(name) for name in sys.argv[1:]}))")
    done = subprocess.run([python, "-c", code, *packages], capture_output=True, text=True, timeout=120)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return dict.fromkeys(packages)


def decode_rate(point: dict) -> float:
    """A point's decode tokens/s: the median of its rounds (e2e_common.median_round). Files written before
    2026-11-30 stored the fastest round in decode_tokens_per_s; their rounds are read again, so every results file
    reads the same statistic."""
    rounds = point.get("rounds_tokens_per_s")
    return statistics.median(rounds) if rounds else point["decode_tokens_per_s"]


def tpot_ms(point: dict) -> float:
    """Time per output token at decode_rate: c requests / decode tokens/s."""
    return 1e3 * point["concurrency"] / decode_rate(point)


def points_by_key(result: dict) -> dict[tuple[int, int], dict]:
    """A backend's measured points by (prompt length, concurrency)."""
    return {(p["prompt_len"], p["concurrency"]): p for p in result["points"]}


def best_builtin(by_backend: dict[str, dict], ours: str, key: tuple[int, int]) -> tuple[str, dict] | None:
    """(name, point) of the engine's fastest built-in backend at this point, or None if none was measured."""
    theirs = [(b, points[key]) for b, points in by_backend.items() if b != ours and key in points]
    return max(theirs, key=lambda item: decode_rate(item[1]), default=None)


def ratios(entry: dict, engine: str) -> dict[str, dict]:
    """Per point "<prompt>x<c>": ours over the fastest built-in backend there, and which one that was."""
    ours = OURS[engine]
    by_backend = {b: points_by_key(r) for b, r in entry["results"].items()}
    out = {}
    for key, mine in sorted(by_backend.get(ours, {}).items()):
        best = best_builtin(by_backend, ours, key)
        if best is not None:
            out[f"{key[0]}x{key[1]}"] = {"best_builtin": best[0], "ratio": round(
                decode_rate(mine) / decode_rate(best[1]), 3)}
    return out


def render_markdown(report: dict) -> str:
    """The results as tables: per engine, decode tokens/s (TPOT ms) per (prompt length, concurrency) and backend,
    and ours over the fastest built-in backend at each point."""
    kv = report["workload"].get("kv_cache_dtype", "auto")
    commit = f"commit {report['commit']}; " if "commit" in report else ""   # files before 2026-12-01 have none
    lines = [f"# Serving benchmark: {report['card']}" + (", fp8 KV cache" if kv == "fp8" else ""), "",
             f"{report['device_name']}, tensor parallel {report['workload']['tp']}; model `{report['model']}`; "
             f"{commit}{report['date']}." + (" Every backend on its engine's fp8 (e4m3) KV cache (`--kv-cache-dtype "
                                             f"{FP8_KV_FLAG['vllm']}` in vLLM, `{FP8_KV_FLAG['sglang']}` in SGLang); "
                                             "a backend without an fp8 path fails at startup and is listed so."
                                             if kv == "fp8" else ""), "",
             f"c requests with the same random token-id prompt length at once, greedy, ignore_eos, streamed; decode "
             f"tokens/s = the c requests' token rates while all of them decode together (from the last one's first "
             f"token to the first one's last), the median of {report['workload']['repeats']} rounds (every round is in "
             f"the JSON); TPOT = c / decode tokens/s (prefix cache "
             f"{'on' if report['workload']['prefix_cache'] else 'off'}, stream interval "
             f"{report['workload']['stream_interval']})."
             + (" All of an engine's backends were served at once, each with 1/n of the memory fraction, and each "
                "point's rounds alternated between them." if report["workload"].get("interleave") else "")
             + " Written by benchmarks/bench_serving.py; do not edit by hand.", ""]
    if "host" in report:
        lines += [f"Host: {host_cpus.describe(report['host'])}.", ""]
    for engine, entry in report["engines"].items():
        torch_version = f" (torch {entry['torch']})" if entry.get("torch") else ""
        lines += [f"## {engine} {entry.get('version') or ''}".rstrip() + torch_version, ""]
        if entry.get("skipped"):
            lines += [f"Skipped: {entry['skipped']}", ""]
            continue
        backends, ours, results = entry["backends"], OURS[engine], entry["results"]
        header = ["prompt", "c", *[f"`{b}`" for b in backends], f"`{ours}` / best built-in"]
        lines += ["Decode tokens/s (TPOT ms):", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        by_backend = {b: points_by_key(results[b]) for b in backends if b in results}
        cell_ratios = ratios(entry, engine)
        for key in sorted({k for points in by_backend.values() for k in points}):
            row = [str(key[0]), str(key[1])]
            for b in backends:
                p = by_backend.get(b, {}).get(key)
                row.append(f"{decode_rate(p):.0f} ({tpot_ms(p):.2f})" if p else "—")
            r = cell_ratios.get(f"{key[0]}x{key[1]}")
            row.append(f"{r['ratio']:.2f}x (`{r['best_builtin']}`)" if r else "—")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        graphs = {b: r.get("cuda_graphs") for b, r in results.items()}
        lines += [f"CUDA graphs captured: {graphs}", ""]
        for b, error in entry.get("errors", {}).items():
            lines += [f"- `{b}` failed: {error.splitlines()[0] if error else ''}"]
        if entry.get("errors"):
            lines.append("")
    return "\n".join(lines)


def write_results(out_dir: Path, report: dict) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    fp8 = report["workload"].get("kv_cache_dtype") == "fp8"
    stem = out_dir / f"serving_{report['card']}{'_fp8' if fp8 else ''}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(render_markdown(report) + "\n")
    return json_path, md_path


# ---------------------------------------------------------------------------------------------- main


def num_heads(args: argparse.Namespace) -> int:
    """The generated checkpoint's query heads: --num-heads, else 16 on an fp8 cache, else serving_model's 128."""
    from mla_backend.models import serving_model

    if args.num_heads is not None:
        return args.num_heads
    return FP8_NUM_HEADS if args.kv_cache_dtype == "fp8" else serving_model.NUM_HEADS


def num_layers(args: argparse.Namespace) -> int:
    """The generated checkpoint's layers: --num-layers, else serving_model's (32)."""
    from mla_backend.models import serving_model

    return serving_model.NUM_LAYERS if args.num_layers is None else args.num_layers


def model_dir(args: argparse.Namespace) -> Path:
    """--model, else where the generated checkpoint lives: serving_model's folder, -h<heads> unless 128 heads and
    -l<layers> unless serving_model's layer count."""
    from mla_backend.models import serving_model

    if args.model is not None:
        return args.model
    heads, layers = num_heads(args), num_layers(args)
    return args.workdir / (serving_model.NAME + ("" if heads == serving_model.NUM_HEADS else f"-h{heads}")
                           + ("" if layers == serving_model.NUM_LAYERS else f"-l{layers}"))


def resolve_model(args: argparse.Namespace) -> Path:
    if args.model is not None:
        return args.model.resolve()
    from mla_backend.models import serving_model

    return serving_model.ensure(model_dir(args), num_heads=num_heads(args), num_layers=num_layers(args)).resolve()


def earlier_engines(path: Path, report: dict, running: list[str]) -> dict:
    """The engines of an earlier results file that this run does not measure; refused if its workload differs."""
    earlier = json.loads(path.read_text())
    mine = (report["card"], report["model_fingerprint"], report["workload"])
    theirs = (earlier["card"], earlier.get("model_fingerprint"), earlier["workload"])
    if theirs != mine:
        raise SystemExit(f"--merge {path}: measured on {theirs[0]}, checkpoint {theirs[1]}, with {theirs[2]}; this run "
                         f"is {mine[0]}, checkpoint {mine[1]}, with {mine[2]}")
    return {e: entry for e, entry in earlier["engines"].items() if e not in running}


def render_files(paths: list[Path]) -> list[Path]:
    """Each results JSON's .md rewritten beside it (render_markdown); returns the .md paths."""
    written = []
    for path in paths:
        md = path.with_suffix(".md")
        md.write_text(render_markdown(json.loads(path.read_text())) + "\n")
        written.append(md)
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        for md in render_files(args.render):
            print(f"written: {md}")
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    device_name = gpu_name()
    from mla_backend.cli.bench import card_slug

    card = args.card or card_slug(device_name)
    if args.dry_run:
        model = model_dir(args)
        for engine in args.engines:
            python = engine_python(args, engine) or f"<{engine}'s python>"
            for backend in backends_of(args, engine):
                print(shlex.join(server_command(engine, python, model, backend, args, 30000)))
        print(json.dumps({"card": card, "context_length": context_length(args), **workload(args)}))
        return 0
    host = host_cpus.choose(args.cpus)
    print(f"host: {host_cpus.describe(host)}", flush=True)
    model = resolve_model(args)
    key = workload_key(args, model)
    report = {"card": card, "device_name": device_name, "model": str(model),
              "model_fingerprint": model_fingerprint(model), "workload": workload(args), "host": host,
              "commit": args.commit or git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "engines": {}}
    if args.merge is not None:
        report["engines"].update(earlier_engines(args.merge, report, args.engines))
    failed = False
    for engine in args.engines:
        backends = backends_of(args, engine)
        python = engine_python(args, engine)
        found = versions(python, engine, "torch")
        entry = report["engines"][engine] = {"backends": list(backends), "version": found[engine],
                                             "torch": found["torch"], "results": {}, "errors": {}}
        if python is None:
            entry["skipped"] = f"{engine} is not installed in {sys.executable}; pass --{engine}-python"
            print(f"[{engine}] {entry['skipped']}", flush=True)
            continue
        workdir = args.workdir / f"{engine}_{key}"
        workdir.mkdir(parents=True, exist_ok=True)
        for results, errors in engine_runs(engine, python, model, args, workdir, host):
            entry["results"].update(results)
            entry["errors"].update(errors)
            entry["ratios"] = ratios(entry, engine)
            failed |= bool(errors)
            paths = write_results(args.out_dir, report)
    paths = write_results(args.out_dir, report)
    print(render_markdown(report))
    print(f"written: {paths[0]}, {paths[1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
