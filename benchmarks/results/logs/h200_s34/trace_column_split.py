"""s34j (diagnostic, branch exp-trace-column-split): clock marks of part 0's CTA of the fp8 column split kernel
(mla_trace.cuh), the 11th of 12 eager launches of each config, each launch synchronized. Prints each role's marks in
µs from the CTA's first mark (cycles converted by role 0's span in %globaltimer ns)."""
import ctypes

import torch

from mla_backend import _build, ops
from mla_backend.testing import make_batch

WG0 = ["barriers", "Q ready"] + ["landed", "QK+softmax", "P stored", "Vt ready", "PV"] * 8
lib = ctypes.CDLL(_build.load_extension())
lib.mla_trace_copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
for b, seqlen in ((4, 4096), (1, 32768), (2, 16384), (8, 8192)):
    x = make_batch(b, 1, 16, [seqlen] * b, causal=True, kv_dtype=torch.float8_e4m3fn, std=1.0)
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, 16, 1, is_fp8_kvcache=True)
    for _ in range(12):
        ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, meta, splits,
                                    softmax_scale=x.softmax_scale, causal=True, descale_k=x.descale_k,
                                    check_values=False)
        torch.cuda.synchronize()
    marks = (ctypes.c_longlong * (3 * 49))()
    span = (ctypes.c_ulonglong * 2)()
    assert lib.mla_trace_copy(marks, span) == 0
    ghz = span[0] / max(span[1], 1)
    print(f"b{b}/s{seqlen}/h16 fp8: part 0 = {meta[0, :5].tolist()}, span {span[0]} cycles = {span[1]} ns "
          f"({ghz:.2f} GHz)")
    for role, name in enumerate(("wg0", "wg1", "producer")):
        count = marks[role * 49]
        values = [marks[role * 49 + 1 + i] / ghz / 1000 for i in range(count)]
        print(f"  {name}: " + "  ".join(f"{v:.2f}" for v in values))
