"""The compiled kernel on an fp8 (float8_e4m3fn) KV cache with a per-tensor descale_k, on a Hopper GPU.

The reference runs in fp32 on the operands the kernels multiply (reference.fp8_cache_operands): the dequantized cache
(k_cache.float() * descale_k) and the query as every fp8 kernel quantizes it (their Q.K^T runs in fp8). The kernels
hold the bf16 path's tolerances against it (assert_matches: out max abs 1e-2, cosine 1 - 1e-5), lse within 1e-3
relative (Hopper's fp8 wgmma accumulates with fewer mantissa bits than fp32). The quantization itself is measured
apart, against the unquantized cache and query:
FlashMLA's test data (std 0.1) within vLLM's fp8-cache tolerance (atol 0.15), and a cosine of 0.998 at std 0.1 and 1.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from conftest import requires_hopper
from mla_backend.testing import FP8_E4M3_NAN, draw_seqlens, make_batch
from test_kernel_gpu import (assert_matches, assert_memcheck_clean, batch_with_empty_requests, run_kernel,
                             run_reference)

pytestmark = [pytest.mark.gpu, requires_hopper]

FP8 = torch.float8_e4m3fn
FP8_LSE_REL_TOL = 1e-3   # fp8 wgmma's accumulator has fewer mantissa bits than fp32
# every (s_q, h_q) of s_q * h_q <= 32 that the fp8 kernels see, edge counts included; b 1 runs the column-split
# kernel at <= 16 rows, b 2 to 80 the block split; b 1 runs row halves at 17-32 (run_kernel passes
# is_fp8_kvcache), b 2 to 80 the 64-row fp8 kernel
ROWS = [(1, 1), (1, 3), (1, 16), (1, 17), (1, 32), (2, 1), (2, 3), (2, 16), (4, 3), (4, 8), (16, 2)]
GRID = list(itertools.product([1, 2, 6, 64, 80], ROWS, [1, 20, 63, 64, 65, 140, 4096, "varlen"], [False, True]))
# more rows: the 64-row fp8 kernel; one tile (33, 64 rows), several (120, 128, 256)
WIDE_ROWS = [(1, 33), (1, 64), (3, 40), (1, 128), (2, 64), (16, 8), (2, 128)]
WIDE_GRID = list(itertools.product([1, 6, 64], WIDE_ROWS, [1, 63, 64, 65, 140, 4096, "varlen"], [False, True]))


def fp8_batch(b, s_q, h_q, seqlens, **kw):
    return make_batch(b, s_q, h_q, seqlens, kv_dtype=FP8, **kw)


def run_fp8_reference(batch):
    """The fp32 reference on the dequantized cache, with the query the kernel multiplies K with."""
    from mla_backend.reference import fp8_cache_operands, mla_decode_reference

    q, k_cache = fp8_cache_operands(batch.q, batch.k_cache, batch.descale_k)
    return mla_decode_reference(q, k_cache, batch.block_table, batch.cache_seqlens, 512, batch.softmax_scale,
                                batch.causal)


def assert_matches_fp8(out, lse, batch):
    assert_matches(out, lse, *run_fp8_reference(batch), lse_rel_tol=FP8_LSE_REL_TOL)


@pytest.mark.parametrize("b,rows,seqlen,causal", GRID + WIDE_GRID)
def test_fp8_cache_matches_fp32_reference_on_the_dequantized_cache(b, rows, seqlen, causal):
    s_q, h_q = rows
    if b >= 64 and seqlen == 4096 and s_q * h_q not in (16, 32, 64, 128):
        pytest.skip("covered at b=6; keeps the grid within minutes")
    g = torch.Generator().manual_seed(hash((b, s_q, h_q, str(seqlen), causal)) % 2**31)
    batch = fp8_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), causal=causal, seed=b * 7 + h_q)
    assert_matches_fp8(*run_kernel(batch), batch)


@pytest.mark.parametrize("b,s_q,h_q,seqlen,causal", [
    (2, 1, 16, 140, False), (6, 2, 16, "varlen", True), (64, 4, 8, 65, True), (128, 1, 32, 1000, False),
    (3, 1, 1, 4096, True), (6, 1, 128, 300, True), (64, 2, 64, "varlen", True),
])
def test_fp8_cache_with_fp16_queries(b, s_q, h_q, seqlen, causal):
    g = torch.Generator().manual_seed(1)
    batch = fp8_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), dtype=torch.float16, causal=causal)
    out, lse = run_kernel(batch)
    assert out.dtype == torch.float16
    assert_matches_fp8(out, lse, batch)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("b,s_q,h_q,seqlen", [
    (1, 1, 16, 32768), (4, 1, 16, 4096), (3, 2, 16, "varlen"), (2, 1, 32, 5000), (128, 1, 16, 4096),
    (2, 1, 128, 5000), (16, 2, 64, "varlen"),
])
def test_fp8_cache_unit_variance_inputs(b, s_q, h_q, seqlen, dtype):
    # std-1 q and K: the cache's codes span e4m3's whole range, the running max moves and rescales matter.
    g = torch.Generator().manual_seed(b + s_q + h_q)
    batch = fp8_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), dtype=dtype, causal=True, seed=5, std=1.0)
    out, lse = run_kernel(batch)
    ref_out, ref_lse = run_fp8_reference(batch)
    assert not out.isnan().any(), "NaN in out"
    rel = ((out.float() - ref_out).norm() / ref_out.norm()).item()
    assert rel <= 1e-2, f"out relative error {rel}"
    finite = torch.isfinite(ref_lse)
    assert torch.equal(finite, torch.isfinite(lse))
    lse_rel = ((lse[finite] - ref_lse[finite]).abs() / ref_lse[finite].abs().clamp(min=1.0)).max().item()
    assert lse_rel <= FP8_LSE_REL_TOL, f"lse rel diff {lse_rel}"


@pytest.mark.parametrize("std", [0.1, 1.0])
def test_fp8_quantization_error_against_the_unquantized_cache(std):
    seqlens = [300, 1000, 64, 5, 4096, 1]
    bf16 = make_batch(6, 1, 16, seqlens, causal=True, std=std, seed=3)
    fp8 = fp8_batch(6, 1, 16, seqlens, causal=True, std=std, seed=3)
    assert torch.equal(bf16.q, fp8.q)
    out, _ = run_kernel(fp8)
    ref_out, _ = run_reference(make_batch(6, 1, 16, seqlens, causal=True, std=std, seed=3, dtype=torch.float32))
    cos = torch.nn.functional.cosine_similarity(out.flatten().double(), ref_out.flatten().double(), dim=0).item()
    assert cos >= 0.998, f"cosine {cos} against the unquantized cache"
    if std == 0.1:   # FlashMLA's test data; vLLM's fp8-cache tests allow atol 0.15 on theirs
        assert (out.float() - ref_out).abs().max().item() <= 0.15


@pytest.mark.parametrize("sign", [0x00, 0x80], ids=["nan_0x7f", "nan_0xff"])
@pytest.mark.parametrize("h_q", [16, 64])
def test_fp8_nan_in_unused_pages_and_tails_never_reaches_output(sign, h_q):
    batch = fp8_batch(5, 2, h_q, [70, 1, 300, 64, 129], causal=True)
    codes = batch.k_cache.view(torch.uint8)
    poisoned = codes == FP8_E4M3_NAN
    assert poisoned.any(), "the batch is not poisoned as the test assumes"
    codes[poisoned] = FP8_E4M3_NAN | sign
    assert_matches_fp8(*run_kernel(batch), batch)


@pytest.mark.parametrize("h_q,s_q", [(16, 1), (16, 2), (32, 1), (64, 1), (128, 2)])
def test_fp8_zero_length_requests_write_zeros_and_inf_lse(h_q, s_q):
    batch = batch_with_empty_requests(s_q, h_q, kv_dtype=FP8)
    out, lse = run_kernel(batch)
    assert torch.isinf(lse[::7]).all() and (out[::7] == 0).all()
    assert_matches_fp8(out, lse, batch)


def test_fp8_all_zero_lengths():
    batch = fp8_batch(4, 1, 16, [0, 0, 0, 0])
    out, lse = run_kernel(batch)
    assert (out == 0).all() and torch.isinf(lse).all() and (lse > 0).all()


def test_fp8_causal_rows_without_keys():
    batch = fp8_batch(3, 4, 8, [1, 2, 3], causal=True)
    assert_matches_fp8(*run_kernel(batch), batch)


def test_fp8_layer_interleaved_kv_cache_strides():
    batch = fp8_batch(5, 2, 16, [70, 1, 300, 64, 129], causal=True)
    layers = torch.full((batch.k_cache.shape[0], 3, 64, 576), FP8_E4M3_NAN, dtype=torch.uint8, device="cuda").view(FP8)
    layers[:, 1] = batch.k_cache[:, :, 0]
    batch.k_cache = layers[:, 1]          # stride(0) = 3 * 64 * 576 bytes
    assert_matches_fp8(*run_kernel(batch), batch)


def test_fp8_one_long_request_split_over_every_sm():
    batch = fp8_batch(1, 1, 16, [65536 + 17], causal=True, extra_blocks=0)
    assert_matches_fp8(*run_kernel(batch), batch)


@pytest.mark.parametrize("b,s_q,h_q", [(32, 1, 16), (32, 2, 16), (8, 2, 16), (32, 1, 128)])
def test_fp8_cuda_graph_reads_descale_k_on_replay(b, s_q, h_q):
    from mla_backend import ops

    max_len = 2048
    g = torch.Generator().manual_seed(3)
    static = fp8_batch(b, s_q, h_q, [int(x) for x in torch.randint(1, max_len, (b,), generator=g)], causal=True)

    def step():   # b 8 and 32 x 32 rows: plans for row halves
        meta, splits = ops.get_mla_metadata(static.cache_seqlens, s_q * h_q, 1, is_fp8_kvcache=True)
        return ops.mla_decode_with_kvcache(static.q, static.k_cache, static.block_table, static.cache_seqlens, 512,
                                           meta, splits, softmax_scale=static.softmax_scale, causal=True,
                                           descale_k=static.descale_k)

    step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        graph_out, graph_lse = step()
    for factor in (1.0, 0.25, 3.0):
        static.descale_k.mul_(factor)
        graph.replay()
        eager_out, eager_lse = step()
        torch.testing.assert_close(graph_out, eager_out, rtol=0, atol=0)
        torch.testing.assert_close(graph_lse, eager_lse, rtol=0, atol=0)
        assert_matches_fp8(graph_out, graph_lse, static)


def test_fp8_cache_with_bf16_equivalent_values_agrees_with_the_bf16_path():
    # Power-of-two scales make both operands exactly representable in bf16 and give the fp8 kernel back the same
    # e4m3 values: the cache's descale_k, and each query row's scale (its max at e4m3's 448, divided by 128, so the
    # kernel's own row rounding, 448 / max, is exactly 128). The same attention on the same values through both
    # kernels, each within its tolerance of the fp32 reference, so within the sum of the two of each other: 1e-2
    # absolute is the tolerance at std 0.1, whose outputs stay below 1; both paths round P and O relatively (two
    # e4m3 parts, 2^-8; bf16, 2^-9), so at std 1 (outputs up to ~2) it scales with the largest output.
    from mla_backend.kernel_facts import E4M3_MAX

    batch = fp8_batch(6, 1, 32, [70, 1, 300, 64, 129, 4000], causal=True, std=1.0)
    batch.descale_k.copy_(torch.exp2(torch.log2(batch.descale_k).round()))
    q = batch.q.float()
    e4m3 = (q * (E4M3_MAX / q.abs().amax(dim=-1, keepdim=True))).to(FP8).float()
    batch.q = (e4m3 / 128).to(batch.q.dtype)
    bf16 = make_batch(6, 1, 32, [70, 1, 300, 64, 129, 4000], causal=True, std=1.0)
    bf16.q = batch.q
    bf16.k_cache = (batch.k_cache.float() * batch.descale_k).to(torch.bfloat16)
    out8, lse8 = run_kernel(batch)
    out16, lse16 = run_kernel(bf16)
    assert (out8.float() - out16.float()).abs().max().item() <= 2 * 1e-2 * max(1.0, out16.float().abs().max().item())
    finite = torch.isfinite(lse16)
    assert torch.equal(finite, torch.isfinite(lse8))
    lse_rel = ((lse8[finite] - lse16[finite]).abs() / lse16[finite].abs().clamp(min=1.0)).max().item()
    assert lse_rel <= FP8_LSE_REL_TOL + 1e-4, f"lse rel diff {lse_rel}"


@pytest.mark.parametrize("b,s_q,h_q,seqlen", [(1, 1, 32, 4096), (1, 2, 16, 9000), (1, 1, 20, 700), (1, 2, 16, 1)])
def test_fp8_row_halves_and_64_row_plans_both_match_the_reference(b, s_q, h_q, seqlen):
    # get_mla_metadata(..., is_fp8_kvcache=True) plans these for row halves; a plan made without it runs the 64-row
    # fp8 kernel
    from mla_backend import ops

    g = torch.Generator().manual_seed(b)
    batch = fp8_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), causal=True)
    shapes = []
    for fp8_plan in (True, False):
        meta, splits = ops.get_mla_metadata(batch.cache_seqlens, s_q * h_q, 1, is_fp8_kvcache=fp8_plan)
        shapes.append(meta.shape[0])
        out, lse = ops.mla_decode_with_kvcache(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens, 512,
                                               meta, splits, softmax_scale=batch.softmax_scale, causal=True,
                                               descale_k=batch.descale_k)
        assert_matches_fp8(out, lse, batch)
    assert shapes[0] * 2 <= shapes[1]


def test_fp8_compute_sanitizer_memcheck_is_clean():
    # one request runs the column-split kernel at <= 16 rows, more the block split; one request runs row halves at
    # 17-32 (32 and 24 rows), more the 64-row fp8 kernel (32, 24, 2 x 12 rows), as 64 and 256 rows
    assert_memcheck_clean([(1, 1, 16, [3000]), (1, 4, 3, [300]), (3, 1, 16, [0, 70, 200]), (2, 2, 16, [65, 1]),
                           (4, 4, 3, [20, 0, 300, 64]),
                           (1, 1, 32, [5000]), (1, 1, 24, [4000]),
                           (2, 1, 32, [5000, 1]), (3, 1, 24, [0, 70, 4000]), (5, 2, 12, [1, 0, 64, 65, 3000]),
                           (72, 1, 32, [0, 1, 63, 64, 65, 130, 700, 2] * 9),
                           (72, 1, 16, [0, 1, 63, 64, 65, 130, 700, 2] * 9),
                           (3, 1, 64, [0, 70, 200]), (2, 2, 128, [65, 1])], fp8=True)
