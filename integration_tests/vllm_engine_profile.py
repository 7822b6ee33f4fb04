"""Where a vLLM decode step's time goes: GPU kernels, or the engine core's host work (one in-process engine).

One process runs vLLM's offline `LLM` with its engine core in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0: scheduler,
UniProcExecutor, model runner, sampler and output processing / detokenization all in this process's main thread),
on benchmarks/bench_serving.py's checkpoint (or --model) and prompts, so that one torch profiler sees both the host
and the CUDA activity. It found why a served vLLM decoded at ~27 ms a step at 64 requests on the byte-tokenizer
checkpoint: its incremental detokenizer (benchmarks/results/logs/vllm_engine_profile_h200/).

Per concurrency c (c prompts of --prompt-len random tokens, prefix-cached by a warm-up round): greedy rounds of
--short and --long tokens, with and without detokenization; a decode step = (T(long) - T(short)) / (long - short),
prefill and request overhead cancelling out. The same difference is taken of the host time spent in the engine's
phases (LLMEngine.step, EngineCoreClient.get_output, Scheduler.schedule / update_from_output, the executor's
execute_model / sample_tokens, waiting on their futures, OutputProcessor.process_outputs; inside execute_model the V2
model runner's prepare_inputs, prepare_attn, the attention metadata build, the CUDA graph replay and sample), timed
by wrappers around those methods. Then, at the first concurrency: --profile-tokens decode steps under torch.profiler
(CPU + CUDA: tables by CUDA and by self CPU time, per-kernel totals, a gzipped chrome trace, the GPU's busy time
against the wall time) and the same steps under cProfile (the Python functions the host time goes to).

    python integration_tests/vllm_engine_profile.py --out OUT_DIR [--backend CUSTOM] [--concurrency 64 1]
        [--prompt-len 4096] [--short 128] [--long 384] [--model DIR] [--profile-tokens 48] [--enforce-eager]

Run it where the vLLM 0.26 bundle is on PYTHONPATH and this repository in front of it (as .variants/vllm.sh's e2e
mode does). Written into OUT_DIR: summary.txt (what stdout shows), results.json, profile_cuda.txt,
profile_cpu.txt, kernels.txt, trace.json.gz, cprofile_tottime.txt, cprofile_cumulative.txt, cpu_c*.txt (ps).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "benchmarks"), str(HERE)]
import bench_serving  # noqa: E402
import e2e_common  # noqa: E402
import host_cpus  # noqa: E402
import vllm_step_probe  # noqa: E402

RUNNER = "llm_engine.engine_core.engine_core.model_executor.driver_worker.worker.model_runner"
# The wrapped methods, as (label, path from the LLM object, method); nested in this order within one step.
PHASES = (
    ("llm_engine.step", "llm_engine", "step"),
    ("get_output", "llm_engine.engine_core", "get_output"),
    ("schedule", "llm_engine.engine_core.engine_core.scheduler", "schedule"),
    ("execute_model", "llm_engine.engine_core.engine_core.model_executor", "execute_model"),
    ("sample_tokens", "llm_engine.engine_core.engine_core.model_executor", "sample_tokens"),
    ("update_from_output", "llm_engine.engine_core.engine_core.scheduler", "update_from_output"),
    ("process_outputs", "llm_engine.output_processor", "process_outputs"),
    # Inside execute_model, on vLLM 0.26's V2 model runner (skipped where the runner has no such attribute).
    ("runner.prepare_inputs", RUNNER, "prepare_inputs"),
    ("runner.prepare_attn", RUNNER, "prepare_attn"),
    ("runner.attn_metadata", RUNNER + ".model_state", "prepare_attn"),
    ("runner.run_fullgraph", RUNNER + ".cudagraph_manager", "run_fullgraph"),
    ("runner.sample", RUNNER, "sample"),
)
WAIT = "wait_on_future"   # Future.result() of execute_model / sample_tokens: the host blocked on the GPU


def step_rate(c: int, short: int, long: int, t_short: float, t_long: float) -> dict:
    """ms per decode step and decode tokens/s of c requests, from rounds of `short` and `long` tokens each."""
    seconds = (t_long - t_short) / (long - short)
    return {"ms_per_step": 1e3 * seconds, "tokens_per_s": c / seconds if seconds > 0 else float("inf")}


def per_step_ms(short: dict[str, float], long: dict[str, float], steps: int) -> dict[str, float]:
    """ms per step of each phase: its seconds in the long round less those in the short one, over `steps`; plus
    what the nested phases leave of their parents (get_output_other: in the engine core but in none of its
    phases; step_other: in LLMEngine.step but neither in get_output nor in process_outputs)."""
    ms = {name: 1e3 * (long.get(name, 0.0) - short.get(name, 0.0)) / steps for name in long}
    core = ("schedule", "execute_model", "sample_tokens", WAIT, "update_from_output")
    if "get_output" in ms:
        ms["get_output_other"] = ms["get_output"] - sum(ms.get(k, 0.0) for k in core)
    if "llm_engine.step" in ms:
        ms["step_other"] = ms["llm_engine.step"] - ms.get("get_output", 0.0) - ms.get("process_outputs", 0.0)
    return ms


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def busy_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: the time some kernel or copy ran."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def say(out: Path, line: str) -> None:
    print(line, flush=True)
    with open(out / "summary.txt", "a") as f:
        f.write(line + "\n")


class Phases:
    """Seconds and calls of the wrapped engine methods; each call also a torch.profiler record_function scope
    (which costs next to nothing while no profiler runs)."""

    def __init__(self):
        self.seconds, self.calls = Counter(), Counter()

    def install(self, llm) -> None:
        for label, path, method in PHASES:
            owner = llm
            try:
                for attr in path.split("."):
                    owner = getattr(owner, attr)
                setattr(owner, method, self._timed(label, getattr(owner, method)))
            except AttributeError as exc:
                if not label.startswith("runner."):
                    raise
                print(f"phase {label} not timed: {exc}", flush=True)

    def _timed(self, label: str, fn):
        from concurrent.futures import Future

        from torch.profiler import record_function

        def timed(*args, **kwargs):
            with record_function(f"phase: {label}"):
                t0 = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                finally:
                    self.seconds[label] += time.perf_counter() - t0
                    self.calls[label] += 1
            if isinstance(result, Future) and "result" not in vars(result):   # not wrapped yet
                result.result = self._timed(WAIT, result.result)
            return result

        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)


def make_llm(args: argparse.Namespace, model: Path):
    """vLLM's LLM with the engine core in this process; our backend registered (also done by vLLM's plugin
    loading through the bundle's entry point), 64-token pages for it as e2e_common.engine_command gives them."""
    from vllm import LLM

    from mla_backend.vllm import plugin

    plugin.register()
    if args.backend == e2e_common.OUR_BACKEND["vllm"]:
        from vllm.v1.attention.backends.registry import AttentionBackendEnum

        if not AttentionBackendEnum.CUSTOM.is_overridden():
            raise RuntimeError("the CUSTOM attention backend is not registered (see the warning above)")
    page = e2e_common.page_args("vllm", args.backend)
    llm = LLM(model=str(model), attention_config={"backend": args.backend}, dtype="bfloat16",
              max_model_len=args.prompt_len + args.long + 128, max_num_seqs=max(args.concurrency),
              gpu_memory_utilization=0.7, enable_prefix_caching=True, enforce_eager=args.enforce_eager, seed=0,
              **({"block_size": int(page[1])} if page else {}))
    from vllm.v1.engine.core_client import InprocClient

    if not isinstance(llm.llm_engine.engine_core, InprocClient):
        raise RuntimeError(f"the engine core is not in this process ({type(llm.llm_engine.engine_core).__name__}): "
                           "VLLM_ENABLE_V1_MULTIPROCESSING=0 was not honoured")
    return llm


def generate(llm, prompts: list[list[int]], max_tokens: int, detokenize: bool = True) -> float:
    """Seconds for all `prompts` (token ids) to get max_tokens greedy tokens each."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, ignore_eos=True, max_tokens=max_tokens, detokenize=detokenize)
    start = time.perf_counter()
    outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    got = {len(o.outputs[0].token_ids) for o in outputs}
    if got != {max_tokens}:
        raise RuntimeError(f"asked for {max_tokens} tokens per request, got {sorted(got)}")
    return seconds


def time_steps(llm, phases: Phases, prompts: list[list[int]], args: argparse.Namespace, out: Path) -> dict:
    """Per detokenize setting: the rounds' times, the decode step they give, and each phase's ms per step."""
    c, steps = len(prompts), args.long - args.short
    # Warm-up, twice: the first round prefills from scratch, the second from the prefix cache as every timed round
    # does. With one warm-up round the first timed round (H200: 1 x 32768 and 64 x 4096) took ~1 s longer than
    # its repeats, which made its step time negative or too small.
    for _ in range(2):
        generate(llm, prompts, 16)
    results = {}
    for detokenize in (True, False):
        s0 = phases.snapshot()
        t_short = generate(llm, prompts, args.short, detokenize)
        s1 = phases.snapshot()
        t_long = vllm_step_probe.with_cpu_samples(out / f"cpu_c{c}_detok{int(detokenize)}.txt",
                                                  lambda: generate(llm, prompts, args.long, detokenize))
        s2 = phases.snapshot()
        rate = step_rate(c, args.short, args.long, t_short, t_long)
        split = per_step_ms(spent(s0, s1), spent(s1, s2), steps)
        results[f"detokenize={detokenize}"] = {"t_short_s": t_short, "t_long_s": t_long, **rate,
                                               "phase_ms_per_step": split}
        say(out, f"c={c} detokenize={detokenize}: T{args.short} {t_short:.2f} s, T{args.long} {t_long:.2f} s -> "
                 f"{rate['ms_per_step']:.2f} ms/step, {rate['tokens_per_s']:.0f} tok/s")
        outside = rate["ms_per_step"] - split.get("llm_engine.step", 0.0)
        say(out, "    host ms/step: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
            + f", outside llm_engine.step {outside:.2f}")
    return results


def profile_steps(llm, phases: Phases, prompts: list[list[int]], args: argparse.Namespace, out: Path) -> dict:
    """--profile-tokens tokens of every prompt under torch.profiler, then under cProfile."""
    import cProfile
    import pstats

    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    generate(llm, prompts, 1)   # the prefix cache holds the prompts: the profiled prefill is one token each
    calls = phases.calls["execute_model"]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=False,
                 with_stack=False) as prof:
        wall = generate(llm, prompts, args.profile_tokens)
        torch.cuda.synchronize()
    steps = phases.calls["execute_model"] - calls or args.profile_tokens   # model steps, the prefill's included
    averages = prof.key_averages()
    (out / "profile_cuda.txt").write_text(averages.table(sort_by="cuda_time_total", row_limit=40))
    (out / "profile_cpu.txt").write_text(averages.table(sort_by="self_cpu_time_total", row_limit=40))

    def on_gpu(event) -> bool:
        return event.device_type == DeviceType.CUDA and not getattr(event, "is_user_annotation", False)

    kernels = sorted((e for e in averages if on_gpu(e)), key=lambda e: -e.self_device_time_total)
    kernel_us = sum(e.self_device_time_total for e in kernels)
    lines = [f"{'us/step':>10} {'calls/step':>10} {'share':>6}  kernel ({steps} steps, {kernel_us / 1e3:.1f} ms)"]
    lines += [f"{e.self_device_time_total / steps:10.1f} {e.count / steps:10.1f} "
              f"{e.self_device_time_total / max(kernel_us, 1e-9):6.1%}  {e.key}" for e in kernels]
    (out / "kernels.txt").write_text("\n".join(lines) + "\n")
    intervals = [(e.time_range.start, e.time_range.end) for e in prof.events() if on_gpu(e)]
    busy = busy_us(intervals)
    span = max(b for _, b in intervals) - min(a for a, _ in intervals) if intervals else 0.0
    trace = out / "trace.json"
    prof.export_chrome_trace(str(trace))
    with open(trace, "rb") as src, gzip.open(str(trace) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    trace.unlink()
    result = {"steps": steps, "tokens": args.profile_tokens, "wall_ms": 1e3 * wall,
              "wall_ms_per_step": 1e3 * wall / steps, "kernel_ms_per_step": kernel_us / 1e3 / steps,
              "gpu_busy_ms_per_step": busy / 1e3 / steps, "gpu_span_ms": span / 1e3,
              "top_kernels": [[e.key, e.self_device_time_total / steps] for e in kernels[:15]]}
    say(out, f"profile c={len(prompts)}: {steps} model steps in {1e3 * wall:.0f} ms wall (profiled) -> "
             f"{result['wall_ms_per_step']:.2f} ms/step; CUDA kernel time {result['kernel_ms_per_step']:.2f} ms/step, "
             f"GPU busy {result['gpu_busy_ms_per_step']:.2f} ms/step ({busy / max(span, 1e-9):.0%} of the "
             f"{span / 1e3:.0f} ms from first to last kernel)")
    for name, us in result["top_kernels"][:8]:
        say(out, f"    {us:9.1f} us/step  {name[:110]}")

    profiler = cProfile.Profile()
    profiler.enable()
    wall = generate(llm, prompts, args.profile_tokens)
    profiler.disable()
    for key in ("tottime", "cumulative"):
        with open(out / f"cprofile_{key}.txt", "w") as f:
            pstats.Stats(profiler, stream=f).sort_stats(key).print_stats(60)
    result["cprofile_wall_ms"] = 1e3 * wall
    say(out, f"cProfile: {args.profile_tokens} tokens in {1e3 * wall:.0f} ms wall (see cprofile_*.txt)")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    vllm_step_probe.add_probe_args(parser)
    parser.add_argument("--profile-tokens", type=int, default=48, help="decode steps profiled (0: none)")
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs, no torch.compile")
    args = parser.parse_args(argv)
    if args.long <= args.short:
        parser.error("--long must be more than --short")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.txt").write_text("")
    say(args.out, f"host: {host_cpus.describe(host_cpus.pin(args.cpus))}")   # before vLLM starts its threads
    # Before vLLM is imported: vllm.envs reads them lazily, but the profiler scopes are cached at first use.
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("VLLM_CUSTOM_SCOPES_FOR_PROFILING", "1")   # vLLM's own record_function scopes
    os.environ.setdefault("VLLM_CACHE_ROOT", str(args.workdir / "vllm_cache_engine_profile"))
    model = bench_serving.resolve_model(args)
    vocab_size, special = e2e_common.vocabulary(model)
    e2e_common.wait_for_free_gpu()   # a server of an earlier run still holding the GPU would shrink the KV pool
    t0 = time.monotonic()
    llm = make_llm(args, model)
    say(args.out, f"{args.backend} engine up in {time.monotonic() - t0:.0f} s (enforce_eager={args.enforce_eager})")
    phases = Phases()
    phases.install(llm)
    results = {"args": {k: str(v) for k, v in vars(args).items()}, "timing": {}}
    try:
        for c in args.concurrency:
            prompts = bench_serving.prompts(vocab_size, special, args.prompt_len, c, 0)
            results["timing"][str(c)] = time_steps(llm, phases, prompts, args, args.out)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
        if args.profile_tokens > 0:
            c = args.concurrency[0]
            prompts = bench_serving.prompts(vocab_size, special, args.prompt_len, c, 0)
            results["profile"] = profile_steps(llm, phases, prompts, args, args.out)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
    finally:
        llm.llm_engine.engine_core.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
