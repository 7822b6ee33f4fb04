"""s56g (diagnostic, with the TRACE tree: trace-wide-16bit.patch plus a role-3 thread that marks each group's landing):
for the 16-bit 64-row TMA kernel, tile 0 / part 0's CTA, blocks 3..27: how long a KV group takes from its TMA issue
(the producer's mark just before it) to its landing (role 3 polling the full barrier), and how long before warpgroup
0 reaches the block (its block-start mark) the whole block had landed (slack; negative: warpgroup 0 waited)."""
import ctypes
import json
import statistics
import sys

import torch

from mla_backend import _build, ops
from mla_backend.testing import make_batch

MARKS, ROLES = 240, 4
lib = ctypes.CDLL(_build.load_extension())
lib.mla_trace_copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
raw = {}
for b, seqlen, h, s_q in ((132, 8192, 128, 2), (128, 4096, 128, 1), (128, 4096, 128, 2), (64, 4096, 64, 2)):
    x = make_batch(b, s_q, h, [seqlen] * b, causal=True, std=1.0)
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, s_q * h, 1)
    for _ in range(12):
        ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                    softmax_scale=x.softmax_scale, causal=True, check_values=False)
        torch.cuda.synchronize()
    marks = (ctypes.c_longlong * (ROLES * (MARKS + 1)))()
    span = (ctypes.c_ulonglong * 2)()
    assert lib.mla_trace_copy(marks, span) == 0
    roles = [[marks[r * (MARKS + 1) + 1 + i] for i in range(marks[r * (MARKS + 1)])] for r in range(ROLES)]
    name = f"b{b}/s{seqlen}/h{h}/q{s_q}"
    raw[name] = roles
    wg0, producer, landed = roles[0], roles[2], roles[3]
    lat = [[], [], []]
    slack = []
    for n in range(3, 28):
        if 4 * n + 3 >= len(producer) or 3 * n + 2 >= len(landed) or 2 + 8 * n >= len(wg0):
            break
        for g in range(3):
            lat[g].append(landed[3 * n + g] - producer[4 * n + 1 + g])
        slack.append(wg0[1 + 8 * n] - max(landed[3 * n:3 * n + 3]))
    ghz = span[0] / max(span[1], 1)
    print(f"{name}: {ghz:.2f} GHz, {len(slack)} blocks; counts {[len(r) for r in roles]}")
    for g, group in enumerate(("V0", "V1", "RoPE")):
        if lat[g]:
            print(f"  {group} issue->landed cycles: median {statistics.median(lat[g]):.0f}, "
                  f"min {min(lat[g])}, max {max(lat[g])}")
    if slack:
        print(f"  slack (warpgroup 0's block start - last group landed): median {statistics.median(slack):.0f}, "
              f"min {min(slack)}, max {max(slack)}, waited on {sum(s < 0 for s in slack)} of {len(slack)}")
json.dump(raw, open(sys.argv[1], "w"))
