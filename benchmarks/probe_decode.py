"""Development probe: our decode step alone, per config, with a per-kernel timeline.

Not the side-by-side benchmark (bench_decode.py, whose numbers are the ones that count): this times only
mla_backend, so a kernel change can be measured in seconds. It is bench_decode's protocol and code for our peer
(its inputs, input-set rotation past L2, per-graph capture with keep-alive, checks against the fp32 reference
right after capture and after the timed replays, median of the replays), without peers or ceilings, plus the
start and end of each kernel in one profiled replay: with programmatic dependent launch the kernels overlap, and
per-kernel totals hide which one is on the critical path.

    python benchmarks/probe_decode.py [--configs b128/s4096/h16/q1,...] [--reps 100]
                                      [--plan scheduler|whole|even] [--kv bf16|fp8] [--parts N] [--fold-pages N]

`--plan whole` and `--plan even` measure a plan idea without writing it in CUDA: the ops take any plan tensors of
the right shape. `whole` never splits a request (part k takes requests [k*b/parts, (k+1)*b/parts)); `even` cuts
every request into chunks of one length, one chunk a part (even_chunk_plan). `--parts N` runs the tile scheduler
itself with N parts (CTAs) instead of one wave (ops.num_sm_parts): fewer splits a request and a shorter combine
against fewer SMs reading.

`--kv fp8` runs ours on the cache quantized to float8_e4m3fn with a power-of-two per-tensor scale: the bf16 inputs
are first replaced by what the fp8 cache stands for (exact in bf16 with such a scale) and the query by the one the
kernel uses (`reference.quantize_query_rows`: rounded to e4m3 per row), so the usual check against the
fp32 reference holds the kernel to the bf16 path's accuracy. GB/s counts 1 byte per cached value.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import bench_decode as bench  # noqa: E402
from peers import MlaBackendFp8Peer, MlaBackendPeer, with_keepalive  # noqa: E402

from mla_backend import tile_scheduler  # noqa: E402
from mla_backend.reference import quantize_query_rows  # noqa: E402

DEFAULT_CONFIGS = ",".join(config.key for config in bench.issue_grid_configs() if not config.varlen)


def whole_request_plan(b: int, parts: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Part k takes requests [k*b//parts, (k+1)*b//parts) whole; an empty part has begin_req == b."""
    sched = torch.zeros(parts, 8, dtype=torch.int32)
    for k in range(parts):
        first, end = k * b // parts, (k + 1) * b // parts
        sched[k, :5] = torch.tensor([first, 0, end - 1, 1 << 30, 0] if end > first else [b, 0, b - 1, 0, 0])
    return sched.to(device), torch.arange(b + 1, dtype=torch.int32, device=device)


def even_chunk_plan(seqlens: list[int], parts: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The tile scheduler's equal-chunk plan with the shortest chunk that fits, taken whatever the cost line's unit
    (the scheduler takes it only where that chunk is at most the unit). Needs b <= parts."""
    blocks = tile_scheduler.kv_blocks(seqlens)
    chunk = tile_scheduler.shortest_chunk(blocks, parts)
    if chunk is None:
        raise ValueError(f"even_chunk_plan: {len(blocks)} requests do not fit one a part in {parts} parts")
    sched, num_splits = tile_scheduler.equal_chunk_plan(blocks, parts, chunk)
    return sched.to(device), num_splits.to(device)


PLANS = {
    "whole": lambda batch, parts: whole_request_plan(batch.b, parts, batch.q.device),
    "even": lambda batch, parts: even_chunk_plan(batch.cache_seqlens.tolist(), parts, batch.q.device),
}


def with_plan(peer: MlaBackendPeer, name: str) -> MlaBackendPeer:
    """peer with PLANS[name] in place of the tile scheduler's plan (as many parts as ops.num_sm_parts)."""
    peer.plan = lambda batch: PLANS[name](batch, peer.ops.num_sm_parts(batch.s_q * batch.h_q, batch.q.device))
    return peer


def with_parts(peer: MlaBackendPeer, parts: int) -> MlaBackendPeer:
    """peer with the tile scheduler's plan for `parts` parts (CTAs), made as get_mla_metadata makes it, N aside.
    The step calls the registered op directly: the public op accepts only num_sm_parts' plan (it refuses a plan
    made for another row count), while the kernel runs whatever number of parts the plan has."""
    def prepare(batch):
        peer.ops._ensure_kernels(batch.q.device)   # the CUDA ops register with the extension
        meta, splits = torch.ops.mla_backend.tile_scheduler(
            batch.cache_seqlens, parts, tile_scheduler.split_overhead_for(batch.s_q * batch.h_q))
        k_cache, descale_k = peer.cache(batch)   # [blocks, 64, 576], as the raw op takes it

        def step():
            return torch.ops.mla_backend.decode_paged(batch.q, None, k_cache, batch.block_table, batch.cache_seqlens,
                                                      meta, splits, batch.softmax_scale, batch.causal, descale_k)

        return with_keepalive(step, batch, k_cache, meta, splits)

    peer._prepare = prepare
    return peer


def fp8_cache(k_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k_cache as float8_e4m3fn and a float32 [1] descale_k, a power of two >= amax / 448 (so k8 * descale_k
    is exactly representable in bf16)."""
    amax = k_cache.float().abs().amax().clamp(min=1e-30)
    descale = torch.exp2(torch.ceil(torch.log2(amax / 448.0))).reshape(1).float()
    return (k_cache.float() / descale).to(torch.float8_e4m3fn), descale


def kernel_timeline(graph) -> list[tuple[str, float, float]]:
    """(kernel, start, end) in µs from the first kernel's start, for one profiled replay."""
    short = {"get_metadata_kernel": "meta", "narrow::mla_decode_narrow_kernel": "narrow",
             "wide::mla_decode_kernel": "wide", "mla_combine_kernel": "combine"}
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        graph.replay()
        torch.cuda.synchronize()
    spans = []
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            name = event.name.split("<")[0].split("(")[0].replace("void ", "").replace("mla::", "")
            spans.append((short.get(name, name), event.time_range.start, event.time_range.end))
    if not spans:   # the profiler sees nothing while another one (ncu) holds CUPTI
        return []
    t0 = min(start for _, start, _ in spans)
    return [(name, start - t0, end - t0) for name, start, end in sorted(spans, key=lambda span: span[1])]


def probe(config: bench.Config, peer: MlaBackendPeer, reps: int, l2_bytes: int, device: torch.device,
          fold_pages: int | None = None) -> str:
    seqlens, batches, reference = bench.config_inputs(config, l2_bytes, device)
    if fold_pages is not None:
        for batch in batches:
            batch.block_table.remainder_(fold_pages)
        reference = bench.compute_reference(batches[0], bench.reference_rows(seqlens))
    if isinstance(peer, MlaBackendFp8Peer):
        for batch in batches:
            batch.k_cache_fp8, batch.descale_k = fp8_cache(batch.k_cache)
            # exact: the bf16 cache now holds what the fp8 one means
            batch.k_cache.copy_(batch.k_cache_fp8.float() * batch.descale_k)
            batch.q.copy_(quantize_query_rows(batch.q))   # idempotent: the kernel rounds it to the same values
        reference = bench.compute_reference(batches[0], bench.reference_rows(seqlens))
    captured = bench.capture_steps(peer, batches)
    try:
        first = bench.replay_and_check(captured[0], reference, peer.lse_base2)
        times = bench.time_replays([item.graph for item in captured], reps, warmup=10)
        after = bench.replay_and_check(captured[0], reference, peer.lse_base2)
        timeline = kernel_timeline(captured[-1].graph)
    finally:
        bench.release(captured)
    nbytes = bench.decode_bytes(sum(seqlens), config.b, config.s_q, config.h_q, peer.kv_bytes)
    flops = bench.decode_flops(sum(seqlens), config.s_q, config.h_q)
    m = bench.metrics(statistics.median(times), nbytes, flops)
    status = "ok" if first["passed"] and after["passed"] else "CHECK FAILED " + "; ".join(
        first["problems"] + after["problems"])
    spans = "  ".join(f"{name} {start:.1f}-{end:.1f}" for name, start, end in timeline)
    return (f"{config.key:<22} {m['us']:8.1f} us {m['gbps']:6.0f} GB/s {m['tflops']:5.0f} TFLOPS  "
            f"rel {float(first['rel_err_out']):.1e}/{float(after['rel_err_out']):.1e} {status}  [{spans}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--plan", choices=("scheduler", *PLANS), default="scheduler",
                        help="whole: a plan that never splits a request; even: equal chunks, one a part")
    parser.add_argument("--kv", choices=("bf16", "fp8"), default="bf16",
                        help="fp8: the cache as float8_e4m3fn with descale_k (s_q * h_q <= 32 only)")
    parser.add_argument("--parts", type=int, help="the tile scheduler's plan with this many parts (CTAs)")
    parser.add_argument("--fold-pages", type=int,
                        help="every block table entry modulo N: all requests read the first N pages of each input "
                             "set, which stay in L2 (the cost of the loads without DRAM)")
    args = parser.parse_args()
    if args.parts is not None and (args.plan != "scheduler" or not 1 <= args.parts <= 1024):
        parser.error("--parts: a part count in [1, 1024] with the scheduler's plan")
    props = torch.cuda.get_device_properties(0)
    print(props.name, torch.__version__, flush=True)
    l2_bytes = max(getattr(props, "L2_cache_size", 0), bench.L2_BYTES_FLOOR)
    peer = MlaBackendFp8Peer() if args.kv == "fp8" else MlaBackendPeer()
    if args.plan != "scheduler":
        peer = with_plan(peer, args.plan)
    if args.parts is not None:
        peer = with_parts(peer, args.parts)
    for config in bench.parse_configs(args.configs):
        print(probe(config, peer, args.reps, l2_bytes, torch.device("cuda"), args.fold_pages), flush=True)


if __name__ == "__main__":
    main()
