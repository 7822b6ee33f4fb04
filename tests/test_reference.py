"""The fp32 reference (mla_backend/reference.py) against attention written out by hand.

The naive version below walks every (request, query row, head, key) with Python loops, looks each key up
through the block table one token at a time, and does the softmax in float64. Shapes stay tiny
(b <= 3, s_q <= 3, h_q <= 3, seqlen <= 130) so the loops cost milliseconds.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mla_backend import ops
from mla_backend.kernel_facts import HEAD_DIM, HEAD_DIM_V
from mla_backend.reference import mla_decode_reference
from mla_backend.testing import BLOCK_SIZE, make_batch

OUT_ATOL = 1e-5
LSE_ATOL = 1e-5


def naive_decode(q, k_cache, block_table, cache_seqlens, softmax_scale, causal):
    """Returns (out float64 [b, s_q, h_q, 512], lse float64 [b, h_q, s_q]) by explicit loops."""
    b, s_q, h_q, _ = q.shape
    pages = k_cache[:, :, 0, :] if k_cache.dim() == 4 else k_cache
    out = torch.zeros(b, s_q, h_q, HEAD_DIM_V, dtype=torch.float64)
    lse = torch.full((b, h_q, s_q), math.inf, dtype=torch.float64)
    for r in range(b):
        seqlen = int(cache_seqlens[r])
        keys = []
        for t in range(seqlen):
            page = int(block_table[r, t // BLOCK_SIZE])
            keys.append(pages[page, t % BLOCK_SIZE].double())
        for i in range(s_q):
            visible = seqlen - (s_q - 1 - i) if causal else seqlen
            visible = max(min(visible, seqlen), 0)
            for h in range(h_q):
                if visible == 0:
                    continue   # out stays exactly 0, lse +inf
                qv = q[r, i, h].double()
                scores = [float(torch.dot(qv, keys[t])) * softmax_scale for t in range(visible)]
                m = max(scores)
                weights = [math.exp(s - m) for s in scores]
                total = sum(weights)
                acc = torch.zeros(HEAD_DIM_V, dtype=torch.float64)
                for t in range(visible):
                    acc += (weights[t] / total) * keys[t][:HEAD_DIM_V]
                out[r, i, h] = acc
                lse[r, h, i] = m + math.log(total)
    return out, lse


def run_reference(batch, softmax_scale="batch", causal=None, k_cache=None, block_table=None):
    scale = batch.softmax_scale if softmax_scale == "batch" else softmax_scale
    return mla_decode_reference(batch.q, batch.k_cache if k_cache is None else k_cache,
                                batch.block_table if block_table is None else block_table, batch.cache_seqlens,
                                HEAD_DIM_V, scale, batch.causal if causal is None else causal)


def assert_close_to_naive(out, lse, naive_out, naive_lse):
    assert out.dtype == torch.float32 and lse.dtype == torch.float32
    assert tuple(out.shape) == tuple(naive_out.shape) and tuple(lse.shape) == tuple(naive_lse.shape)
    assert not out.isnan().any(), "NaN in out"
    assert not lse.isnan().any(), "NaN in lse"
    no_keys = torch.isinf(naive_lse)
    assert torch.equal(torch.isinf(lse), no_keys), "lse is +inf at other rows than the naive math"
    assert (lse[no_keys] > 0).all(), "rows without keys need lse = +inf, not -inf"
    assert (out[no_keys.permute(0, 2, 1)] == 0).all(), "rows without keys must be exactly 0"
    out_err = (out.double() - naive_out).abs().max().item() if out.numel() else 0.0
    assert out_err <= OUT_ATOL, f"out max abs diff {out_err}"
    if (~no_keys).any():
        lse_err = (lse.double()[~no_keys] - naive_lse[~no_keys]).abs().max().item()
        assert lse_err <= LSE_ATOL, f"lse max abs diff {lse_err}"


def check_against_naive(batch, softmax_scale="batch", causal=None):
    scale = batch.softmax_scale if softmax_scale == "batch" else softmax_scale
    causal = batch.causal if causal is None else causal
    out, lse = run_reference(batch, softmax_scale, causal)
    naive_scale = scale if scale is not None else HEAD_DIM ** -0.5
    naive_out, naive_lse = naive_decode(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens,
                                        naive_scale, causal)
    assert_close_to_naive(out, lse, naive_out, naive_lse)
    return out, lse


# --- against the naive math ------------------------------------------------------------------------------

CASES = {
    "b1_sq1_h1_one_token": (1, 1, 1, [1]),
    "b2_sq1_h3_page_edge": (2, 1, 3, [64, 65]),
    "b3_sq2_h2_mixed": (3, 2, 2, [63, 130, 20]),
    "b3_sq3_h3_long": (3, 3, 3, [130, 5, 128]),
    "b3_sq3_h2_short_and_zero": (3, 3, 2, [2, 0, 129]),
    "b2_sq3_h1_all_zero": (2, 3, 1, [0, 0]),
}


@pytest.mark.parametrize("causal", [False, True], ids=["noncausal", "causal"])
@pytest.mark.parametrize("b,s_q,h_q,seqlens", list(CASES.values()), ids=list(CASES))
def test_reference_matches_naive_softmax_attention(b, s_q, h_q, seqlens, causal):
    batch = make_batch(b, s_q, h_q, seqlens, causal=causal, device="cpu", seed=b * 100 + s_q * 10 + h_q)
    check_against_naive(batch)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_reference_matches_naive_for_every_input_dtype(dtype):
    batch = make_batch(2, 2, 3, [77, 130], dtype=dtype, causal=True, device="cpu", seed=7)
    check_against_naive(batch)


@settings(max_examples=15, deadline=None)
@given(s_q=st.integers(1, 3), h_q=st.integers(1, 3), causal=st.booleans(), seed=st.integers(0, 2**16),
       seqlens=st.lists(st.integers(0, 130), min_size=1, max_size=3))
def test_reference_matches_naive_on_random_tiny_batches(s_q, h_q, causal, seed, seqlens):
    batch = make_batch(len(seqlens), s_q, h_q, seqlens, causal=causal, device="cpu", seed=seed)
    check_against_naive(batch)


# --- causal masking -------------------------------------------------------------------------------------


def test_causal_query_i_sees_exactly_the_first_seqlen_minus_s_q_minus_1_minus_i_keys():
    """Row i of a causal batch equals a non-causal run over the first seqlen - (s_q - 1 - i) keys."""
    s_q, seqlens = 3, [70, 130, 64]
    batch = make_batch(3, s_q, 2, seqlens, causal=True, device="cpu", seed=3)
    out, lse = run_reference(batch)
    for i in range(s_q):
        shorter = torch.tensor([s - (s_q - 1 - i) for s in seqlens], dtype=torch.int32)
        ref_out, ref_lse = mla_decode_reference(batch.q, batch.k_cache, batch.block_table, shorter, HEAD_DIM_V,
                                                batch.softmax_scale, causal=False)
        torch.testing.assert_close(out[:, i], ref_out[:, i], rtol=0, atol=1e-6)
        torch.testing.assert_close(lse[:, :, i], ref_lse[:, :, i], rtol=0, atol=1e-6)


def test_causal_with_one_query_equals_non_causal():
    batch = make_batch(3, 1, 3, [1, 64, 129], device="cpu", seed=11)
    out_c, lse_c = run_reference(batch, causal=True)
    out_n, lse_n = run_reference(batch, causal=False)
    assert torch.equal(out_c, out_n) and torch.equal(lse_c, lse_n)


def test_causal_row_with_no_visible_key_gives_zero_out_and_inf_lse():
    # s_q = 3: with seqlen 1, rows 0 and 1 see 1 - 2 = -1 and 0 keys; with seqlen 2, row 0 sees 0 keys.
    batch = make_batch(2, 3, 2, [1, 2], causal=True, device="cpu", seed=5)
    out, lse = check_against_naive(batch)
    empty = [(0, 0), (0, 1), (1, 0)]
    for r, i in empty:
        assert (out[r, i] == 0).all()
        assert torch.isinf(lse[r, :, i]).all() and (lse[r, :, i] > 0).all()
    for r, i in [(0, 2), (1, 1), (1, 2)]:
        assert torch.isfinite(lse[r, :, i]).all() and out[r, i].abs().max() > 0


# --- zero-length requests and NaN poison ----------------------------------------------------------------


def test_zero_length_requests_give_zero_out_and_inf_lse():
    for causal in (False, True):
        batch = make_batch(3, 2, 3, [0, 70, 0], causal=causal, device="cpu", seed=9)
        out, lse = check_against_naive(batch)
        for r in (0, 2):
            assert (out[r] == 0).all()
            assert torch.isinf(lse[r]).all() and (lse[r] > 0).all()
        assert torch.isfinite(lse[1]).all()
    batch = make_batch(2, 1, 1, [0, 0], device="cpu")
    out, lse = run_reference(batch)
    assert (out == 0).all() and torch.isinf(lse).all() and (lse > 0).all()


def _valid_token_mask(batch):
    """[num_blocks, 64]: True where some request's token lives."""
    valid = torch.zeros(batch.k_cache.shape[0], BLOCK_SIZE, dtype=torch.bool)
    for r, seqlen in enumerate(batch.cache_seqlens.tolist()):
        for t in range(seqlen):
            valid[int(batch.block_table[r, t // BLOCK_SIZE]), t % BLOCK_SIZE] = True
    return valid


def test_nan_in_unused_pages_and_last_page_tail_never_reaches_output():
    seqlens = [70, 1, 130]   # tails of 58, 63 and 62 NaN tokens in each last page, plus 3 NaN spare pages
    batch = make_batch(3, 2, 3, seqlens, causal=True, device="cpu", seed=13)
    valid = _valid_token_mask(batch)
    nan_token = batch.k_cache[:, :, 0].isnan().any(-1)
    assert nan_token[~valid].all() and not nan_token[valid].any(), "the batch is not poisoned as the test assumes"
    used_pages = set(batch.block_table[batch.block_table < batch.k_cache.shape[0]].tolist())
    assert len(used_pages) < batch.k_cache.shape[0], "no unused page to poison"
    out, lse = check_against_naive(batch)
    # The same batch with the poison swapped for huge finite values gives bit-identical results.
    loud = batch.k_cache.clone()
    loud[~valid] = 1e4
    out2, lse2 = run_reference(batch, k_cache=loud)
    assert torch.equal(out, out2) and torch.equal(lse, lse2)


# --- softmax scale and k_cache layouts ------------------------------------------------------------------


def test_default_softmax_scale_is_576_to_the_minus_half():
    batch = make_batch(2, 2, 2, [65, 130], device="cpu", seed=17)
    out, lse = check_against_naive(batch, softmax_scale=None)
    out_explicit, lse_explicit = run_reference(batch, softmax_scale=HEAD_DIM ** -0.5)
    assert torch.equal(out, out_explicit) and torch.equal(lse, lse_explicit)
    out_vllm, _ = run_reference(batch, softmax_scale=192 ** -0.5)
    assert not torch.allclose(out, out_vllm), "the scale must matter for this batch"


def test_public_op_on_cpu_defaults_to_the_same_scale():
    batch = make_batch(2, 2, 2, [65, 130], device="cpu", seed=17)
    meta, splits = ops.get_mla_metadata(batch.cache_seqlens, 2 * 2, 1)
    out, lse = ops.mla_decode_with_kvcache(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens,
                                           HEAD_DIM_V, meta, splits, softmax_scale=None, causal=False)
    ref_out, ref_lse = run_reference(batch, softmax_scale=HEAD_DIM ** -0.5)
    assert out.dtype == batch.q.dtype
    assert torch.equal(out, ref_out.to(out.dtype)) and torch.equal(lse, ref_lse)


@pytest.mark.parametrize("causal", [False, True])
def test_3d_k_cache_view_gives_the_same_result_as_4d(causal):
    batch = make_batch(3, 2, 3, [0, 65, 130], causal=causal, device="cpu", seed=19)
    nb = batch.k_cache.shape[0]
    out4, lse4 = run_reference(batch)
    for view in (batch.k_cache.view(nb, BLOCK_SIZE, HEAD_DIM), batch.k_cache[:, :, 0, :], batch.k_cache.squeeze(2)):
        out3, lse3 = run_reference(batch, k_cache=view)
        assert torch.equal(out3, out4) and torch.equal(lse3, lse4)


def test_layer_interleaved_k_cache_with_large_block_stride_gives_the_same_result():
    """stride(0) > 64 * 576 (vLLM may interleave layers): the other layer's NaN must not leak in."""
    batch = make_batch(2, 2, 2, [65, 130], device="cpu", seed=23)
    nb = batch.k_cache.shape[0]
    both_layers = torch.full((nb, 2, BLOCK_SIZE, 1, HEAD_DIM), float("nan"), dtype=batch.k_cache.dtype)
    both_layers[:, 1] = batch.k_cache
    strided_4d = both_layers[:, 1]
    assert strided_4d.stride(0) == 2 * BLOCK_SIZE * HEAD_DIM
    out, lse = run_reference(batch)
    for view in (strided_4d, strided_4d[:, :, 0, :]):
        out_s, lse_s = run_reference(batch, k_cache=view)
        assert torch.equal(out_s, out) and torch.equal(lse_s, lse)


def test_permuted_block_table_gives_the_same_result_as_identity():
    seqlens, s_q, h_q = [130, 0, 64, 1], 2, 3
    g = torch.Generator().manual_seed(29)
    pages_per_req = [math.ceil(s / BLOCK_SIZE) for s in seqlens]
    num_pages = sum(pages_per_req)
    logical = (torch.randn(num_pages, BLOCK_SIZE, 1, HEAD_DIM, generator=g) / 10).clamp(-1, 1).to(torch.bfloat16)
    q = (torch.randn(len(seqlens), s_q, h_q, HEAD_DIM, generator=g) / 10).clamp(-1, 1).to(torch.bfloat16)
    max_blocks = max(pages_per_req) + 1
    logical_table = torch.full((len(seqlens), max_blocks), 2147480000, dtype=torch.int32)
    start = 0
    for r, pages in enumerate(pages_per_req):
        logical_table[r, :pages] = torch.arange(start, start + pages, dtype=torch.int32)
        start += pages
    # The identity layout keeps logical page p at physical page p; the permuted one at perm[p], with two
    # NaN pages mixed in.
    extra = 2
    perm = torch.randperm(num_pages + extra, generator=g)[:num_pages].to(torch.int32)
    assert not torch.equal(perm, torch.arange(num_pages, dtype=torch.int32))
    permuted_cache = torch.full((num_pages + extra, BLOCK_SIZE, 1, HEAD_DIM), float("nan"), dtype=torch.bfloat16)
    permuted_cache[perm.long()] = logical
    permuted_table = logical_table.clone()
    in_use = logical_table < num_pages
    permuted_table[in_use] = perm[logical_table[in_use].long()]
    lens = torch.tensor(seqlens, dtype=torch.int32)
    for causal in (False, True):
        ident = mla_decode_reference(q, logical, logical_table, lens, HEAD_DIM_V, 0.1, causal)
        permd = mla_decode_reference(q, permuted_cache, permuted_table, lens, HEAD_DIM_V, 0.1, causal)
        assert torch.equal(ident[0], permd[0]) and torch.equal(ident[1], permd[1])
        naive_out, naive_lse = naive_decode(q, permuted_cache, permuted_table, lens, 0.1, causal)
        assert_close_to_naive(permd[0], permd[1], naive_out, naive_lse)


def test_output_shapes_dtypes_and_lse_layout():
    b, s_q, h_q = 2, 3, 2
    batch = make_batch(b, s_q, h_q, [10, 100], device="cpu", seed=31)
    out, lse = run_reference(batch)
    assert out.dtype == torch.float32 and tuple(out.shape) == (b, s_q, h_q, HEAD_DIM_V)
    assert lse.dtype == torch.float32 and tuple(lse.shape) == (b, h_q, s_q)
    # lse is [b, h_q, s_q]: a query row that differs from the others in one head shows up at [r, head, row].
    q = batch.q.clone()
    q[1, 2, 1] = 0   # all scores 0 -> uniform softmax over 100 keys -> lse = log(100)
    out, lse = mla_decode_reference(q, batch.k_cache, batch.block_table, batch.cache_seqlens, HEAD_DIM_V,
                                    batch.softmax_scale, False)
    assert abs(lse[1, 1, 2].item() - math.log(100)) < 1e-6
    keys = torch.stack([batch.k_cache[int(batch.block_table[1, t // BLOCK_SIZE]), t % BLOCK_SIZE, 0].double()
                        for t in range(100)])
    torch.testing.assert_close(out[1, 2, 1].double(), keys[:, :HEAD_DIM_V].mean(0), rtol=0, atol=1e-6)


# --- fp8 (e4m3) caches -----------------------------------------------------------------------------------


def test_quantize_kv_fp8_scales_by_amax_over_448_and_keeps_nan_as_0x7f():
    from mla_backend.kernel_facts import E4M3_MAX
    from mla_backend.testing import FP8_E4M3_NAN, quantize_kv_fp8

    batch = make_batch(3, 1, 2, [70, 1, 130], device="cpu", seed=21, dtype=torch.float32)
    keys = batch.k_cache
    quantized, descale = quantize_kv_fp8(keys)
    assert quantized.dtype == torch.float8_e4m3fn and descale.dtype == torch.float32 and descale.shape == (1,)
    nan = keys.isnan()
    assert nan.any() and (quantized.view(torch.uint8)[nan] == FP8_E4M3_NAN).all()
    finite = keys[~nan]
    assert descale.item() == pytest.approx(finite.abs().max().item() / E4M3_MAX, rel=1e-6)
    restored = quantized.float()[~nan] * descale
    assert restored.abs().max().item() == pytest.approx(finite.abs().max().item(), rel=2 ** -4)
    # e4m3 keeps 3 mantissa bits: half an ulp is 2^-4 relative, plus the subnormal step near 0
    assert ((restored - finite).abs() <= finite.abs() * 2 ** -4 + descale * 2 ** -10).all()


def test_dequantize_kv_is_the_stored_value_times_the_scale():
    from mla_backend.reference import dequantize_kv

    stored = torch.tensor([0.0, 1.0, -2.5, 448.0, float("nan")]).to(torch.float8_e4m3fn)
    for scale in (torch.tensor([0.5]), torch.tensor(0.5), 0.5):
        out = dequantize_kv(stored, scale)
        assert out.dtype == torch.float32
        assert torch.equal(out[:4], torch.tensor([0.0, 0.5, -1.25, 224.0])) and out[4].isnan()


def test_fp8_cache_reference_matches_naive_on_the_dequantized_cache_and_nan_never_reaches_output():
    from mla_backend.reference import dequantize_kv

    batch = make_batch(3, 2, 3, [70, 1, 130], causal=True, device="cpu", seed=17, kv_dtype=torch.float8_e4m3fn)
    dequantized = dequantize_kv(batch.k_cache, batch.descale_k)
    valid = _valid_token_mask(batch)
    nan_token = dequantized[:, :, 0].isnan().any(-1)
    assert nan_token[~valid].all() and not nan_token[valid].any(), "the fp8 batch is not poisoned as the test assumes"
    out, lse = run_reference(batch, k_cache=dequantized)
    naive_out, naive_lse = naive_decode(batch.q, dequantized, batch.block_table, batch.cache_seqlens,
                                        batch.softmax_scale, True)
    assert_close_to_naive(out, lse, naive_out, naive_lse)
