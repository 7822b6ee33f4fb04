"""s38d (diagnostic, branch exp-trace-wide-fp8): clock marks of tile 0 / part 0's CTA of the 64-row fp8 kernel
(kernels/mla_trace.cuh), the 11th of 12 eager launches of each config, each launch synchronized. Prints each phase's
mean cycles a block over blocks 3..28 of the CTA, per role (warpgroup 0, warpgroup 1, the producer)."""
import ctypes
import json
import sys

import torch

from mla_backend import _build, ops
from mla_backend.testing import make_batch

WG0 = ["start->landed", "Q.K^T", "softmax", "pack", "P buffer wait", "P stores", "Vt wait", "P.V issue", "to next"]
WG1 = ["P wait", "Vt wait", "P.V issue", "P.V wait", "to next"]
PRODUCER = ["raw stage wait + copy issue", "to transpose", "transpose: landed wait", "Vt stage wait", "transpose"]
lib = ctypes.CDLL(_build.load_extension())
lib.mla_trace_copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
raw = {}


def phases(marks, first, per_block, names, lo=3, hi=28):
    sums = [0.0] * len(names)
    count = 0
    for k in range(lo, hi):
        base = first + per_block * k
        if base + per_block >= len(marks):
            break
        for j in range(per_block):
            sums[j] += marks[base + j + 1] - marks[base + j]
        count += 1
    if not count:
        return "no full blocks"
    total = sum(sums) / count
    return f"{total:.0f} cycles a block: " + ", ".join(f"{n} {s / count:.0f}" for n, s in zip(names, sums))


for b, seqlen, h in ((128, 4096, 128), (128, 4096, 32), (128, 4096, 64)):
    x = make_batch(b, 1, h, [seqlen] * b, causal=True, kv_dtype=torch.float8_e4m3fn, std=1.0)
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, h, 1, is_fp8_kvcache=True)
    for _ in range(12):
        ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                    softmax_scale=x.softmax_scale, causal=True, descale_k=x.descale_k,
                                    check_values=False)
        torch.cuda.synchronize()
    marks = (ctypes.c_longlong * (3 * 321))()
    span = (ctypes.c_ulonglong * 2)()
    assert lib.mla_trace_copy(marks, span) == 0
    ghz = span[0] / max(span[1], 1)
    name = f"b{b}/s{seqlen}/h{h}"
    print(f"{name} fp8: part 0 = {meta[0, :5].tolist()}, span {span[0]} cycles = {span[1]} ns ({ghz:.2f} GHz)")
    roles = [[marks[r * 321 + 1 + i] for i in range(marks[r * 321])] for r in range(3)]
    raw[name] = roles
    print("  warpgroup 0:", phases(roles[0], 1, 9, WG0))
    print("  warpgroup 1:", phases(roles[1], 1, 5, WG1))
    print("  producer:   ", phases(roles[2], 3, 5, PRODUCER))
json.dump(raw, open(sys.argv[1], "w"))
