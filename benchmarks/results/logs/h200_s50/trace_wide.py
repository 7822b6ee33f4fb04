"""s51a (diagnostic; kernels patched with patches/trace-wide-16bit.patch): clock marks of tile 0 / part 0's CTA of the
16-bit 64-row kernel (kernels/mla_trace.cuh in the patched tree), the 11th of 12 eager launches of each config, each
launch synchronized. Prints each phase's mean cycles a block over blocks 3..27 of the CTA, per role (warpgroup 0,
warpgroup 1, the TMA producer). The marks slow the kernel (s38d: ~25%): read the shares, not the sums."""
import ctypes
import json
import sys

import torch

from mla_backend import _build, ops
from mla_backend.testing import make_batch

WG0 = ["landed wait", "Q.K^T", "softmax", "barrier", "P.V0 issue", "P hand-over", "P.V0 wait", "to next"]
WG1 = ["V1 wait", "P wait", "P.V1", "to next"]
PRODUCER = ["V0 free wait", "V0 issue + V1 free wait", "V1 issue + RoPE free wait", "RoPE issue + next page"]
MARKS = 240
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
    return f"{total:.0f} cycles a block over {count}: " + ", ".join(f"{n} {s / count:.0f}" for n, s in zip(names, sums))


for b, seqlen, h, s_q in ((132, 8192, 128, 2), (128, 4096, 128, 1), (128, 4096, 128, 2)):
    x = make_batch(b, s_q, h, [seqlen] * b, causal=True, std=1.0)
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, s_q * h, 1)
    for _ in range(12):
        ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                    softmax_scale=x.softmax_scale, causal=True, check_values=False)
        torch.cuda.synchronize()
    marks = (ctypes.c_longlong * (3 * (MARKS + 1)))()
    span = (ctypes.c_ulonglong * 2)()
    assert lib.mla_trace_copy(marks, span) == 0
    ghz = span[0] / max(span[1], 1)
    name = f"b{b}/s{seqlen}/h{h}/q{s_q}"
    print(f"{name}: part 0 = {meta[0, :5].tolist()}, span {span[0]} cycles = {span[1]} ns ({ghz:.2f} GHz)")
    roles = [[marks[r * (MARKS + 1) + 1 + i] for i in range(marks[r * (MARKS + 1)])] for r in range(3)]
    raw[name] = roles
    # role 0's mark 0 is the kernel's start; role 1 and 2 start at their first block's mark.
    print("  warpgroup 0:", phases(roles[0], 1, 8, WG0))
    print("  warpgroup 1:", phases(roles[1], 0, 4, WG1))
    print("  producer:   ", phases(roles[2], 0, 4, PRODUCER))
json.dump(raw, open(sys.argv[1], "w"))
