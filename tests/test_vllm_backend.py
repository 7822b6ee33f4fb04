"""The vLLM backend on CPU, built the way vLLM builds it: the reasons vLLM prints for a configuration it cannot
run, the builder's metadata (our tile scheduler's plan, in persistent buffers under full CUDA graphs) and forward_mqa
(q as a tuple or concatenated, spec decode, strided caches, vLLM's scale, an fp8 cache with the layer's _k_scale)
against the fp32 reference."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

from vllm.platforms.interface import DeviceCapability
from vllm.v1.attention.backend import AttentionCGSupport

from types import SimpleNamespace

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
                                      dict(kv_cache_dtype="bfloat16"), dict(device_capability=DeviceCapability(9, 0)),
                                      dict(kv_cache_dtype="fp8"), dict(kv_cache_dtype="fp8_e4m3")])
def test_deepseek_on_hopper_is_accepted(override):
    assert reasons(**override) == []


@pytest.mark.parametrize("override,words", [
    (dict(block_size=16), "KV pages of 64 tokens, got block size 16 (pass --block-size 64)"),
    (dict(dtype=torch.float32), "bfloat16 or float16 models, got torch.float32"),
    (dict(kv_cache_dtype="fp8_e5m2"), "fp8 KV caches in e4m3 only, got kv_cache_dtype=fp8_e5m2 "
                                      "(pass --kv-cache-dtype fp8_e4m3, or auto"),
    (dict(kv_cache_dtype="fp8_ds_mla"), "got kv_cache_dtype=fp8_ds_mla (pass --kv-cache-dtype auto or fp8_e4m3)"),
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


def test_kv_cache_dtypes_are_flashmlas():
    """vLLM's FLASHMLA backend (our model for the fp8 path) declares the same list: bf16/fp16 and fp8 e4m3."""
    from vllm.v1.attention.backends.mla.flashmla import FlashMLABackend

    assert MLABackend.supported_kv_cache_dtypes == FlashMLABackend.supported_kv_cache_dtypes
    assert {"fp8", "fp8_e4m3"} <= set(MLABackend.supported_kv_cache_dtypes)
    assert "fp8_e5m2" not in MLABackend.supported_kv_cache_dtypes


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


@pytest.mark.parametrize("cache_dtype,q_len,seq_lens", [("fp8", 2, [4000]), ("fp8", 2, [1, 70, 4000, 129]),
                                                    ("fp8_e4m3", 1, [4000]), ("auto", 2, [4000])])
def test_builder_plan_is_made_for_the_cache(checkpoint, cache_dtype, q_len, seq_lens):
    # 16 heads x 2 tokens = 32 rows on an fp8 cache: one request's plan is for row halves (half the parts), more
    # requests' for the 64-row fp8 kernel; either is held in the full-graph buffers
    builder = make_builder(vllm_config(checkpoint, num_speculative_tokens=q_len - 1, cache_dtype=cache_dtype))
    meta = builder.build(0, decode_batch(seq_lens, q_len, block_table_for(seq_lens)))
    fp8 = cache_dtype != "auto"
    expected = ops.get_mla_metadata(torch.tensor(seq_lens, dtype=torch.int32), q_len * HEADS, 1, fp8)
    assert torch.equal(meta.decode.tile_scheduler_metadata, expected[0])
    halves = fp8 and q_len * HEADS > 16 and len(seq_lens) == 1
    assert expected[0].shape[0] == ops.DEFAULT_NUM_SMS // (2 if halves else 1)
    assert meta.decode.tile_scheduler_metadata.data_ptr() == builder.plan_buffers.tile_scheduler_metadata.data_ptr()


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


def test_fp8_cache_with_more_query_rows_than_the_fp8_kernel_takes_is_refused_by_the_builder(checkpoint):
    """16 heads x (1 + 2 speculative tokens) = 48 rows > 32; with 1 speculative token (32 rows) it builds."""
    with pytest.raises(ValueError, match=r"^mla_backend: with an fp8 KV cache .* 16 heads x 3 tokens = 48 .*"
                                         r"--tensor-parallel-size at least 2x larger .*--kv-cache-dtype auto"):
        make_builder(vllm_config(checkpoint, num_speculative_tokens=2, cache_dtype="fp8"))
    assert make_builder(vllm_config(checkpoint, num_speculative_tokens=1, cache_dtype="fp8")).plan_buffers
    assert make_builder(vllm_config(checkpoint, num_speculative_tokens=2)).plan_buffers   # bf16: 48 rows are fine


# --- impl -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cache_dtype", ["auto", "fp8", "fp8_e4m3"])
def test_the_query_is_never_quantized(checkpoint, cache_dtype):
    """MLACommonImpl sets supports_quant_query_input; ours clears it, so vLLM hands over a bf16/fp16 query."""
    impl = make_impl(vllm_config(checkpoint, cache_dtype=cache_dtype), HEADS, SCALE)
    assert impl.supports_quant_query_input is False
    assert impl.fp8_kv_cache == (cache_dtype != "auto")


@pytest.mark.parametrize("heads,spec,words", [
    (128, 0, "got 128 heads x 1 token = 128: pass a --tensor-parallel-size at least 4x larger (32 query heads per "
             "GPU or fewer), or --kv-cache-dtype auto"),          # DeepSeek-V3 at TP 1
    (64, 0, "--tensor-parallel-size at least 2x larger"),          # DeepSeek-V3 at TP 2
    (32, 1, "got 32 heads x 2 tokens = 64 (speculative decoding with 1 draft token)"),
])
def test_fp8_cache_with_too_many_heads_per_gpu_is_refused_while_the_model_is_built(checkpoint, heads, spec, words):
    config = vllm_config(checkpoint, num_speculative_tokens=spec, cache_dtype="fp8")
    with pytest.raises(ValueError, match="^mla_backend: with an fp8 KV cache it takes at most 32 query rows") as info:
        make_impl(config, heads, SCALE)
    assert words in str(info.value)
    make_impl(vllm_config(checkpoint, num_speculative_tokens=spec), heads, SCALE)   # a bf16 cache takes them


def test_fp8_cache_at_32_rows_is_accepted(checkpoint):
    make_impl(vllm_config(checkpoint, cache_dtype="fp8"), 32, SCALE)              # DeepSeek-V3 at TP 4
    make_impl(vllm_config(checkpoint, num_speculative_tokens=1, cache_dtype="fp8_e4m3"), 16, SCALE)   # TP 8 + MTP

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


# --- fp8 cache ---------------------------------------------------------------------------------------------------

def fp8_batch(s_q, seqlens=(1, 70, 200)):
    return make_batch(len(seqlens), s_q, HEADS, list(seqlens), device="cpu", causal=True, seed=10 + s_q,
                      kv_dtype=torch.float8_e4m3fn)


def run_fp8_decode(checkpoint, x, cache, q=None):
    """x's fp8 cache through forward_mqa with a vLLM layer whose _k_scale is x.descale_k (0-dim, as vLLM keeps it)."""
    s_q = x.q.shape[1]
    config = vllm_config(checkpoint, num_speculative_tokens=s_q - 1, cache_dtype="fp8")
    meta = make_builder(config).build(0, decode_batch(x.cache_seqlens.tolist(), s_q, x.block_table))
    layer = SimpleNamespace(_k_scale=x.descale_k.reshape(()).clone())
    q = x.q.reshape(-1, HEADS, 576) if q is None else q
    return make_impl(config, HEADS, SCALE).forward_mqa(q, cache, meta, layer), layer


def fp8_expected(x):
    dequantized = reference.dequantize_kv(x.k_cache, x.descale_k)
    out, lse = reference.mla_decode_reference(reference.quantize_query_rows(x.q), dequantized, x.block_table,
                                              x.cache_seqlens, 512, SCALE, causal=True)
    b, s_q, h, _ = out.shape
    return out.reshape(b * s_q, h, 512), lse.transpose(1, 2).reshape(b * s_q, h)


@pytest.mark.parametrize("s_q", [1, 2])
@pytest.mark.parametrize("as_uint8", [False, True], ids=["viewed_fp8", "uint8_storage"])
def test_fp8_forward_mqa_reads_the_cache_with_the_layers_k_scale(checkpoint, s_q, as_uint8):
    """vLLM views its uint8 allocation as float8_e4m3fn before forward_mqa; a uint8 cache is viewed here too."""
    x = fp8_batch(s_q)
    cache = x.k_cache.squeeze(2)
    (out, lse), _ = run_fp8_decode(checkpoint, x, cache.view(torch.uint8) if as_uint8 else cache)
    ref_out, ref_lse = fp8_expected(x)
    assert out.dtype == torch.bfloat16 and out.shape == (3 * s_q, HEADS, 512)
    torch.testing.assert_close(out, ref_out.to(out.dtype))
    torch.testing.assert_close(lse, ref_lse)


def test_fp8_descale_k_is_a_view_of_the_layers_scale(checkpoint, monkeypatch):
    """The kernel reads _k_scale where vLLM keeps it (a CUDA graph replays with its current value): no copy, and
    the query reaches the op in bf16, q_nope and q_pe apart."""
    seen = {}
    real = ops.mla_decode_with_kvcache

    def spy(q, *args, **kwargs):
        seen.update(q=q, **kwargs)
        return real(q, *args, **kwargs)

    monkeypatch.setattr(ops, "mla_decode_with_kvcache", spy)
    x = fp8_batch(1)
    q = x.q.reshape(-1, HEADS, 576)
    _, layer = run_fp8_decode(checkpoint, x, x.k_cache.squeeze(2), (q[..., :512].clone(), q[..., 512:].clone()))
    assert seen["descale_k"].shape == (1,) and seen["descale_k"].data_ptr() == layer._k_scale.data_ptr()
    assert seen["q"].dtype == torch.bfloat16 and seen["q_rope"].dtype == torch.bfloat16


def test_fp8_scale_changes_the_output_as_dequantization_says(checkpoint):
    """Doubling _k_scale is attention over keys twice as large (the scale is not dropped or applied twice)."""
    x = fp8_batch(1)
    x.descale_k = x.descale_k * 2
    (out, _), _ = run_fp8_decode(checkpoint, x, x.k_cache.squeeze(2))
    torch.testing.assert_close(out, fp8_expected(x)[0].to(out.dtype))
