"""s51 diagnostic: %globaltimer marks of every CTA of the narrow 16-bit decode kernel and its combine (kernels/
mla_timeline.cuh in this patched tree), from the second of two back-to-back replays of a one-call CUDA graph, with
the bench's per-replay event time of the same graph and of a graph of one tiny kernel (the floor of a replay)."""
import ctypes
import json
import statistics
import sys

import torch

sys.path.insert(0, "benchmarks")
from bench_ceilings import time_calls_us  # noqa: E402

from mla_backend import _build, ops  # noqa: E402
from mla_backend.testing import make_batch  # noqa: E402

K, M = 1024, 8
lib = ctypes.CDLL(_build.load_extension())
DECODE = ["entry", "wait released", "Q ready", "first landed", "last P.V done", "end", "first issued", "page known"]
COMBINE = ["entry", "wait released", "end"]


def read(fn):
    buf = (ctypes.c_ulonglong * (K * M))()
    assert getattr(lib, fn)(buf) == 0
    return [[buf[i * M + j] for j in range(M)] for i in range(K)]


def clear():
    assert lib.mla_timeline_narrow_clear() == 0 and lib.mla_timeline_combine_clear() == 0


def stats(rows, j, t0):
    v = sorted((r[j] - t0) / 1e3 for r in rows if r[j])
    if not v:
        return "-"
    return f"{v[0]:6.2f} {v[len(v) // 2]:6.2f} {v[-1]:6.2f} (n={len(v)})"


def timed(graph, reps=400):
    return statistics.median(time_calls_us([graph.replay], reps, 50, 200_000))


out = {}
tiny = torch.zeros(16, device="cuda")
g0 = torch.cuda.CUDAGraph()
with torch.cuda.graph(g0):
    tiny.add_(1)
print(f"one tiny kernel a replay: {timed(g0):.2f} us")
for b, s in ((8, 8192), (4, 4096), (32, 1024), (1, 32768), (128, 4096)):
    x = make_batch(b, 1, 16, [s] * b, causal=True, std=1.0)
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, 16, 1)

    def call():
        return ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                           softmax_scale=x.softmax_scale, causal=True, check_values=False)
    for _ in range(3):
        call()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        call()
    us = timed(g)
    clear()
    torch.cuda.synchronize()
    g.replay()
    g.replay()
    torch.cuda.synchronize()
    dec, comb = read("mla_timeline_narrow"), read("mla_timeline_combine")
    dec = [r for r in dec if r[0]]
    comb = [r for r in comb if r[0]]
    t0 = min(r[0] for r in dec)
    name = f"b{b}/s{s}/h16"
    print(f"\n{name}: graph replay {us:.2f} us (events), parts {meta.shape[0]}, splits {splits[-1].item()}; "
          f"us from the first decode CTA's entry: min / median / max over CTAs")
    for j, n in enumerate(DECODE):
        print(f"  decode  {n:14s} {stats(dec, j, t0)}")
    for j, n in enumerate(COMBINE):
        print(f"  combine {n:14s} {stats(comb, j, t0)}")
    out[name] = {"event_us": us, "decode": dec, "combine": comb, "t0": t0}
json.dump(out, open(sys.argv[1], "w"))
