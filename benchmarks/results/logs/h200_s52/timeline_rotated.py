"""s52d diagnostic: where the narrow 16-bit kernel's start goes when its plan, seqlens and block table are cold. The
s51 timeline (h200_s51/timeline_narrow.py, run in a tree patched with h200_s51/patches/timeline-narrow.patch) read
the second of two back-to-back replays of one graph: its small inputs were warm in L2. Here each shape also has
three other input sets (each KV cache > L2 / 4, own plan), replayed in between, so the graph whose marks are read
finds its plan and tables as an engine's layer would: after other layers' bytes went through L2."""
import ctypes
import json
import sys

import torch

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


def median_after(rows, j, t0):
    v = sorted((r[j] - t0) / 1e3 for r in rows if r[j])
    return v[len(v) // 2] if v else float("nan")


def marks(replays):
    clear()
    torch.cuda.synchronize()
    for g in replays:
        g.replay()
    torch.cuda.synchronize()
    dec = [r for r in read("mla_timeline_narrow") if r[0]]
    comb = [r for r in read("mla_timeline_combine") if r[0]]
    t0 = min(r[0] for r in dec)
    return dec, comb, t0


out = {}
for b, s in ((8, 8192), (4, 4096), (32, 1024), (1, 32768)):
    graphs, keep = [], []
    for seed in range(4):
        x = make_batch(b, 1, 16, [s] * b, causal=True, std=1.0, seed=seed)
        meta, splits = ops.get_mla_metadata(x.cache_seqlens, 16, 1)

        def call(x=x, meta=meta, splits=splits):
            return ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                               softmax_scale=x.softmax_scale, causal=True, check_values=False)
        for _ in range(2):
            call()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            call()
        graphs.append(g)
        keep.append((x, meta, splits))
    name = f"b{b}/s{s}/h16"
    print(f"\n{name}: medians over CTAs, us from the first decode CTA's entry")
    print(f"  {'mark':16s} {'warm (g0, g0)':>14s} {'cold (g1-g3, g0)':>17s}")
    res = {}
    for label, seq in (("warm", [graphs[0], graphs[0]]), ("cold", graphs[1:] + graphs[:1])):
        runs = [marks(seq) for _ in range(5)]
        res[label] = [[median_after(dec, j, t0) for j in range(M)] + [median_after(comb, j, t0) for j in range(3)]
                      for dec, comb, t0 in runs]
    for j, n in enumerate(DECODE + ["combine " + c for c in COMBINE]):
        w = sorted(r[j] for r in res["warm"])[2]
        c = sorted(r[j] for r in res["cold"])[2]
        print(f"  {n:16s} {w:14.2f} {c:17.2f}")
    out[name] = res
json.dump(out, open(sys.argv[1], "w"))
