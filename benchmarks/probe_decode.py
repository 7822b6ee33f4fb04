"""Development probe: our decode step alone, per config, with a per-kernel time breakdown.

Not the side-by-side benchmark (that is bench_decode.py, whose numbers are the ones that count): this
times only mla_backend, so a kernel change can be measured in seconds. Same protocol as the benchmark
for the step itself (one CUDA graph of metadata + decode + combine per input set, input sets rotated so
KV is not in L2, median of the replays), O(1) inputs, and the output checked against the fp32 reference
on a few requests before timing. The breakdown comes from one profiled replay per config.

    python benchmarks/probe_decode.py [--configs b128/s4096/h16/q1,...] [--reps 100]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mla_backend import ops  # noqa: E402
from mla_backend.reference import mla_decode_reference  # noqa: E402

DEFAULT_CONFIGS = (
    "b128/s4096/h16/q1,b128/s4096/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1,b128/s4096/h128/q2,"
    "b132/s8192/h128/q2,b64/s16384/h16/q1,b64/s2048/h16/q2,b32/s1024/h16/q1,b8/s8192/h16/q1,b4/s4096/h16/q1,"
    "b1/s32768/h16/q1,b1/s32768/h128/q1"
)
PAGE = 64
L2_BYTES = 60 * 2**20
SCALE = 192 ** -0.5


def parse(key: str) -> tuple[int, int, int, int]:
    b, s, h, q = (int(part[1:]) for part in key.split("/"))
    return b, s, h, q


def make_inputs(b, s_k, h_q, s_q, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    pages = math.ceil(s_k / PAGE)
    perm = torch.randperm(b * pages, device="cuda", generator=g).to(torch.int32)
    table = perm.view(b, pages).contiguous()
    cache = torch.randn(b * pages, PAGE, 576, device="cuda", generator=g).to(torch.bfloat16)
    q = torch.randn(b, s_q, h_q, 576, device="cuda", generator=g).to(torch.bfloat16)
    seqlens = torch.full((b,), s_k, dtype=torch.int32, device="cuda")
    return q, cache, table, seqlens


def check(q, cache, table, seqlens, out) -> float:
    rows = slice(0, min(4, q.shape[0]))
    ref, _ = mla_decode_reference(q[rows], cache, table[rows], seqlens[rows], 512, SCALE, True)
    return float((out[rows].float() - ref).norm() / ref.norm())


def kernel_timeline(graph) -> list[tuple[str, float, float]]:
    """(kernel, start, end) in µs from the first kernel's start, for one profiled replay."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        graph.replay()
        torch.cuda.synchronize()
    spans = []
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            name = event.name.split("<")[0].split("(")[0].replace("void ", "").replace("mla::", "")
            name = name.replace("narrow::mla_decode_narrow_kernel", "narrow").replace("mla_decode_kernel", "wide")
            spans.append((name.replace("get_metadata_kernel", "meta").replace("mla_combine_kernel", "combine"),
                          event.time_range.start, event.time_range.end))
    t0 = min(start for _, start, _ in spans)
    return [(name, start - t0, end - t0) for name, start, end in sorted(spans, key=lambda x: x[1])]


def whole_request_plan(b: int, parts: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Experiment: no request split; part k takes requests [k*b//parts, (k+1)*b//parts)."""
    sched = torch.zeros(parts, 8, dtype=torch.int32)
    for k in range(parts):
        first, end = k * b // parts, (k + 1) * b // parts
        sched[k, :5] = torch.tensor([first, 0, end - 1, 1 << 30, 0]) if end > first else torch.tensor([b, 0, b - 1, 0, 0])
    return sched.to(device), torch.arange(b + 1, dtype=torch.int32, device=device)


def probe(key: str, reps: int, plan: str) -> str:
    b, s_k, h_q, s_q = parse(key)
    kv_bytes = b * math.ceil(s_k / PAGE) * PAGE * 576 * 2
    sets = max(4, 4 * L2_BYTES // kv_bytes + 1)
    inputs = [make_inputs(b, s_k, h_q, s_q, seed) for seed in range(sets)]
    graphs, outs, plans = [], [], []
    for q, cache, table, seqlens in inputs:
        parts = ops.num_sm_parts(s_q * h_q, q.device)
        fixed_plan = whole_request_plan(b, parts, q.device) if plan == "whole" else None
        plans.append(fixed_plan)   # the graph reads it: keep it alive as long as the graph

        def step(q=q, cache=cache, table=table, seqlens=seqlens, fixed_plan=fixed_plan):
            meta, splits = fixed_plan or ops.get_mla_metadata(seqlens, s_q * h_q, 1)
            return ops.mla_decode_with_kvcache(q, cache, table, seqlens, 512, meta, splits, softmax_scale=SCALE,
                                               causal=True, check_values=False)
        step()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs.append(step())
        graphs.append(graph)
    graphs[0].replay()
    torch.cuda.synchronize()
    rel = check(*inputs[0], outs[0][0])
    for i in range(10):
        graphs[i % sets].replay()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda._sleep(200_000 * reps)
    for i in range(reps):
        starts[i].record()
        graphs[i % sets].replay()
        ends[i].record()
    torch.cuda.synchronize()
    us = statistics.median(s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends))
    graphs[0].replay()
    torch.cuda.synchronize()
    rel_after = check(*inputs[0], outs[0][0])
    timeline = kernel_timeline(graphs[1 % sets])
    nbytes = (b * s_k * 576 + b * s_q * h_q * 1088) * 2
    flops = 2 * h_q * s_q * 1088 * b * s_k
    split = "  ".join(f"{name} {start:.1f}-{end:.1f}" for name, start, end in timeline)
    return (f"{key:<22} {us:8.1f} us {nbytes / us / 1e3:6.0f} GB/s {flops / us / 1e6:5.0f} TFLOPS  "
            f"rel {rel:.1e}/{rel_after:.1e}  [{split}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--plan", choices=("scheduler", "whole"), default="scheduler",
                        help="whole: an experiment plan that never splits a request")
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    for key in args.configs.split(","):
        print(probe(key, args.reps, args.plan), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
