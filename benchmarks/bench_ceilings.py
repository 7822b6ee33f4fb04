"""The card's ceilings, measured at the start of each benchmark run, and the rule that uses them.

No decode step moves bytes faster than a device-to-device copy or multiplies faster than a large bf16
matmul on the same card. So each timed entry gets a floor, max(bytes / copy rate, flops / matmul rate),
and reports how close it comes to it (% of floor = floor / time). A figure above a ceiling by more than
CEILING_SLACK means the step skipped work (a harness bug, e.g. a graph reading freed memory): the entry is
marked invalid and does not count.

    copy_gbps     = 2 · COPY_BYTES / t   (bytes read + written), median of CEILING_REPS copies
    matmul_tflops = 2 · N³ / t           (N = MATMUL_N, bf16), median of CEILING_REPS matmuls
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Sequence

import torch

COPY_BYTES = 2 * 2**30  # 2 GiB, far beyond any L2
MATMUL_N = 8192
CEILING_REPS = 10
CEILING_WARMUP = 3
CEILING_SLACK = 1.03
INVALID_PREFIX = "above the measured ceiling: harness bug"


def gbps(nbytes: float, time_us: float) -> float:
    return nbytes / time_us / 1e3


def tflops(flops: float, time_us: float) -> float:
    return flops / time_us / 1e6


def floor_us(nbytes: int, flops: int, ceilings: dict) -> float:
    """The least time the work can take on this card: whichever of bytes and flops binds."""
    return max(nbytes / (ceilings["copy_gbps"] * 1e3), flops / (ceilings["matmul_tflops"] * 1e6))


def pct_of_floor(time_us: float, floor: float) -> float:
    """100 at the floor; above 100 only if the entry beats a ceiling."""
    return 100.0 * floor / time_us


def ceiling_violation(nbytes: int, flops: int, time_us: float, ceilings: dict) -> str | None:
    """Why the entry is impossible on this card (None: it is not)."""
    over = []
    rate = gbps(nbytes, time_us)
    if rate > CEILING_SLACK * ceilings["copy_gbps"]:
        over.append(f"{rate:.0f} GB/s > {CEILING_SLACK}x the {ceilings['copy_gbps']:.0f} GB/s copy")
    rate = tflops(flops, time_us)
    if rate > CEILING_SLACK * ceilings["matmul_tflops"]:
        over.append(f"{rate:.0f} TFLOPS > {CEILING_SLACK}x the {ceilings['matmul_tflops']:.0f} TFLOPS matmul")
    return f"{INVALID_PREFIX} ({'; '.join(over)})" if over else None


def time_calls_us(calls: Sequence[Callable[[], object]], reps: int, warmup: int,
                  host_lead_cycles_per_rep: int = 0) -> list[float]:
    """Per-call times in µs, each between its own pair of CUDA events, the calls taken in rotation. The warm-up
    makes the `warmup` calls before calls[0] in the rotation, so the timed calls continue it: none repeats a call
    the warm-up just made (a call that reads its own input set would find it in L2). With a host lead, the GPU
    first spins that many cycles per rep, so the host has queued every timed call before the first one runs
    (short calls are otherwise timed with the host's launch gaps)."""
    for i in range(-warmup, 0):
        calls[i % len(calls)]()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    if host_lead_cycles_per_rep:
        torch.cuda._sleep(host_lead_cycles_per_rep * reps)
    for i in range(reps):
        starts[i].record()
        calls[i % len(calls)]()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends, strict=True)]


def time_op_us(op: Callable[[], object], reps: int = CEILING_REPS, warmup: int = CEILING_WARMUP) -> list[float]:
    return time_calls_us([op], reps, warmup)


def measure_copy_gbps(device: torch.device, nbytes: int = COPY_BYTES) -> float:
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    time_us = statistics.median(time_op_us(functools.partial(dst.copy_, src)))
    del src, dst
    torch.cuda.empty_cache()
    return gbps(2 * nbytes, time_us)


def measure_matmul_tflops(device: torch.device, n: int = MATMUL_N) -> float:
    a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    c = torch.empty_like(a)
    time_us = statistics.median(time_op_us(functools.partial(torch.mm, a, b, out=c)))
    del a, b, c
    torch.cuda.empty_cache()
    return tflops(2 * n**3, time_us)


def measure_ceilings(device: torch.device) -> dict:
    return {
        "copy_gbps": round(measure_copy_gbps(device), 1),
        "matmul_tflops": round(measure_matmul_tflops(device), 1),
        "copy": f"device-to-device copy of {COPY_BYTES / 2**30:.0f} GiB, bytes read + written",
        "matmul": f"{MATMUL_N}^3 bf16 torch.mm",
        "statistic": f"median of {CEILING_REPS}, CUDA events", "slack": CEILING_SLACK,
    }
