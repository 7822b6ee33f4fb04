"""s37h: how far each fp8 kernel's output is from the fp32 reference (on the operands it multiplies) as the context
grows: the 64-row fp8 kernel accumulates O across all of a request's blocks in fp8 wgmma's accumulator (whose
additions keep ~14 bits, DeepSeek-V3 report), the swap-AB kernels each block's P.V in a fresh accumulator added to O
in fp32. Prints max |out - ref| and the relative RMS error per (kernel, rows, seqlen, std)."""
import sys

import torch

sys.path.insert(0, "tests")
from test_kernel_fp8_gpu import FP8, run_fp8_reference  # noqa: E402

from mla_backend import ops  # noqa: E402
from mla_backend.testing import make_batch  # noqa: E402


def run(batch, fp8_plan):
    b, s_q, h_q, _ = batch.q.shape
    meta, splits = ops.get_mla_metadata(batch.cache_seqlens, s_q * h_q, 1, is_fp8_kvcache=fp8_plan)
    return ops.mla_decode_with_kvcache(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens, 512, meta,
                                       splits, softmax_scale=batch.softmax_scale, causal=False,
                                       descale_k=batch.descale_k)


for std in (0.1, 1.0):
    for h_q in (32, 128):
        for seqlen in (256, 1024, 4096, 16384, 65536):
            batch = make_batch(1, 1, h_q, [seqlen], kv_dtype=FP8, std=std, seed=seqlen + h_q)
            ref, _ = run_fp8_reference(batch)
            plans = (("halves", True), ("64-row", False)) if h_q == 32 else (("64-row", False),)
            for name, fp8_plan in plans:
                out, _ = run(batch, fp8_plan)
                err = out.float() - ref
                rel = (err.pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()
                mean_rel = (err.mean() / ref.abs().mean()).item()
                print(f"std {std} h{h_q} s{seqlen:6d} {name:7s} max|err| {err.abs().max().item():.5f} "
                      f"rel rms {rel:.2e} mean err/mean|ref| {mean_rel:+.2e} |ref|max {ref.abs().max().item():.3f}",
                      flush=True)
