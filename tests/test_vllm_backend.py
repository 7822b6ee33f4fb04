"""The vLLM backend on CPU, built the way vLLM builds it: the reasons vLLM prints for a configuration it cannot
run, the builder's metadata (our tile scheduler's plan, in persistent buffers under full CUDA graphs) and forward_mqa
(q as a tuple or concatenated, spec decode, strided caches, vLLM's scale) against the fp32 reference."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

from vllm.platforms.interface import DeviceCapability
from vllm.v1.attention.backend import AttentionCGSupport

from mla_backend import ops, reference
from mla_backend.models import tiny_model
from mla_backend.vllm.backend import MLABackend
from mla_backend.testing import make_batch
from vllm_cpu import MAX_NUM_SEQS, decode_batch, make_builder, make_impl, vllm_config

HEADS = 16
SCALE = 192 ** -0.5 * 1.3 ** 2       # DeepSeek's qk_head_dim**-0.5 * mscale**2, not 576**-0.5
HOPPER = DeviceCapability(9, 0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_model.generate(tmp_path_factory.mktemp("tiny_dsv2"), num_layers=1, num_heads=HEADS)


def reasons(**override):
    config = dict(head_size=576, dtype=torch.bfloat16, kv_cache_dtype="auto", block_size=64, use_mla=True,
                  has_sink=False, use_sparse=False, use_mm_prefix=False, use_per_head_quant_scales=False,
                  device_capability=HOPPER, attn_type="decoder")
    config.update(override)
    return MLABackend.validate_configuration(**config)


# --- what vLLM is told ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override", [{}, dict(dtype=torch.float16), dict(block_size=None), dict(block_size=128),
                                      dict(kv_cache_dtype="bfloat16"), dict(device_capability=DeviceCapability(9, 0))])
def test_deepseek_on_hopper_is_accepted(override):
    assert reasons(**override) == []


@pytest.mark.parametrize("override,words", [
    (dict(block_size=16), "KV pages of 64 tokens, got block size 16 (pass --block-size 64)"),
    (dict(dtype=torch.float32), "bfloat16 or float16 models, got torch.float32"),
    (dict(kv_cache_dtype="fp8"), "got kv_cache_dtype=fp8"),
    (dict(device_capability=DeviceCapability(8, 0)),
     "needs a Hopper GPU (compute capability 9.x, sm_90a: H100, H200, H800, H20), but this GPU has compute "
     "capability 8.0"),
    (dict(device_capability=DeviceCapability(10, 0)), "this GPU has compute capability 10.0"),
    (dict(head_size=320), "head size 576 (kv_lora_rank 512 + rope 64), got 320"),
    (dict(use_sparse=True), "no sparse MLA"),
    (dict(use_mla=False), "MLA models (DeepSeek-V2/V3) only"),
])
def test_refusal_names_the_reason(override, words):
    found = reasons(**override)
    ours = [r for r in found if r.startswith("mla_backend: ")]
    assert len(ours) == 1 and words in ours[0], found


def test_every_reason_is_reported_at_once():
    (ours,) = [r for r in reasons(block_size=16, dtype=torch.float32, device_capability=DeviceCapability(8, 6))
               if r.startswith("mla_backend: ")]
    assert ours.count(";") == 2


def test_static_facts():
    assert MLABackend.get_name() == "CUSTOM" and MLABackend.is_mla()
    assert MLABackend.get_supported_kernel_block_sizes() == [64]
    assert MLABackend.get_preferred_block_size(16) == 64     # what vLLM picks without --block-size
    assert MLABackend.get_builder_cls()._cudagraph_support == AttentionCGSupport.UNIFORM_BATCH


# --- builder ----------------------------------------------------------------------------------------------------

def block_table_for(seq_lens, extra=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    pages = [math.ceil(s / 64) for s in seq_lens]
    perm = torch.randperm(sum(pages) + extra, generator=g).to(torch.int32)
    table = torch.zeros(len(seq_lens), max(pages) + 1, dtype=torch.int32)
    start = 0
    for i, n in enumerate(pages):
        table[i, :n] = perm[start:start + n]
        start += n
    return table


@pytest.mark.parametrize("q_len", [1, 2, 4])
def test_builder_plan_is_our_schedulers_for_the_decode_rows(checkpoint, q_len):
    builder = make_builder(vllm_config(checkpoint, num_speculative_tokens=q_len - 1))
    seq_lens = [1, 70, 4000, 129]
    table = block_table_for(seq_lens)
    meta = builder.build(0, decode_batch(seq_lens, q_len, table))
    assert (meta.num_decodes, meta.num_prefills, meta.num_decode_tokens) == (4, 0, 4 * q_len)
    expected = ops.get_mla_metadata(torch.tensor(seq_lens, dtype=torch.int32), q_len * HEADS, 1)
    assert torch.equal(meta.decode.tile_scheduler_metadata, expected[0])
    assert torch.equal(meta.decode.num_splits, expected[1])
    assert torch.equal(meta.decode.block_table, table) and meta.decode.seq_lens.tolist() == seq_lens


def test_full_cudagraph_plan_lives_in_buffers_that_every_step_rewrites(checkpoint):
    builder = make_builder(vllm_config(checkpoint))
    sched_buf, splits_buf = builder.plan_buffers.tile_scheduler_metadata, builder.plan_buffers.num_splits
    # 16 heads at q_len 1 fill one 64-row tile, so every SM gets a part; one slot per request + 1.
    assert tuple(sched_buf.shape) == (ops.DEFAULT_NUM_SMS, 8) and splits_buf.shape == (MAX_NUM_SEQS + 1,)
    for seq_lens in ([5, 3000], [4096, 64, 65, 1]):
        meta = builder.build(0, decode_batch(seq_lens, 1, block_table_for(seq_lens)))
        sched, splits = meta.decode.tile_scheduler_metadata, meta.decode.num_splits
        assert sched.data_ptr() == sched_buf.data_ptr() and splits.data_ptr() == splits_buf.data_ptr()
        expected = ops.get_mla_metadata(torch.tensor(seq_lens, dtype=torch.int32), HEADS, 1)
        assert torch.equal(sched, expected[0]) and torch.equal(splits, expected[1])


def test_without_full_cudagraphs_no_buffers_are_kept(checkpoint):
    builder = make_builder(vllm_config(checkpoint, full_cudagraphs=False))
    assert builder.plan_buffers is None
    meta = builder.build(0, decode_batch([10], 1, block_table_for([10])))
    assert meta.decode.num_splits.shape == (2,)


def test_spec_decode_threshold_follows_vllms_speculative_tokens(checkpoint):
    assert make_builder(vllm_config(checkpoint, num_speculative_tokens=3)).reorder_batch_threshold == 4


def test_more_query_tokens_than_the_kernel_takes_are_refused(checkpoint):
    with pytest.raises(ValueError, match="at most 16 query tokens per request; 16 speculative tokens are too many"):
        make_builder(vllm_config(checkpoint, num_speculative_tokens=16))


# --- impl -------------------------------------------------------------------------------------------------------

def run_decode(checkpoint, x, q):
    """q [T, N, 576] or a (nope, pe) tuple through our builder and forward_mqa."""
    s_q = x.q.shape[1]
    builder = make_builder(vllm_config(checkpoint, num_speculative_tokens=s_q - 1))
    meta = builder.build(0, decode_batch(x.cache_seqlens.tolist(), s_q, x.block_table))
    return make_impl(vllm_config(checkpoint), HEADS, SCALE).forward_mqa(q, x.k_cache.squeeze(2), meta, None)


def expected(x):
    out, lse = reference.mla_decode_reference(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, SCALE, causal=True)
    b, s_q, h, _ = out.shape
    return out.reshape(b * s_q, h, 512), lse.transpose(1, 2).reshape(b * s_q, h)


def batch(s_q, seqlens=(1, 70, 200)):
    return make_batch(len(seqlens), s_q, HEADS, list(seqlens), device="cpu", causal=True, seed=s_q)


@pytest.mark.parametrize("s_q", [1, 2, 4])
def test_forward_mqa_is_causal_decode_with_vllms_scale(checkpoint, s_q):
    x = batch(s_q)
    out, lse = run_decode(checkpoint, x, x.q.reshape(-1, HEADS, 576))
    ref_out, ref_lse = expected(x)
    assert out.shape == (3 * s_q, HEADS, 512) and out.dtype == torch.bfloat16
    assert lse.shape == (3 * s_q, HEADS) and lse.dtype == torch.float32
    torch.testing.assert_close(out, ref_out.to(out.dtype))
    torch.testing.assert_close(lse, ref_lse)


def test_tuple_and_concatenated_q_agree(checkpoint):
    x = batch(2)
    q = x.q.reshape(-1, HEADS, 576)
    out_cat, lse_cat = run_decode(checkpoint, x, q)
    out_tuple, lse_tuple = run_decode(checkpoint, x, (q[..., :512].clone(), q[..., 512:].clone()))
    assert torch.equal(out_cat, out_tuple) and torch.equal(lse_cat, lse_tuple)


def test_layer_interleaved_cache_is_read_through_its_strides(checkpoint):
    x = batch(1)
    interleaved = torch.full((x.k_cache.shape[0], 3, 64, 576), float("nan"), dtype=x.k_cache.dtype)
    interleaved[:, 1] = x.k_cache.squeeze(2)
    view = interleaved[:, 1]
    assert view.stride(0) == 3 * 64 * 576
    builder = make_builder(vllm_config(checkpoint))
    meta = builder.build(0, decode_batch(x.cache_seqlens.tolist(), 1, x.block_table))
    impl = make_impl(vllm_config(checkpoint), HEADS, SCALE)
    out, _ = impl.forward_mqa(x.q.reshape(-1, HEADS, 576), view, meta, None)
    torch.testing.assert_close(out, expected(x)[0].to(out.dtype))
