"""The public ops' contract on CPU: every bad argument is refused by name before any kernel runs, the
CPU path equals the reference, and the ops trace under torch.compile through their fake kernels."""
from __future__ import annotations

import math

import pytest
import torch

from mla_backend import ops, reference, tile_scheduler
from mla_backend.testing import make_batch, split_query


def batch(b=3, s_q=2, h_q=4, seqlens=(0, 70, 130), **kw):
    return make_batch(b, s_q, h_q, list(seqlens), device="cpu", causal=True, **kw)


def decode_args(x, **override):
    meta, splits = ops.get_mla_metadata(x.cache_seqlens, x.q.shape[1] * x.q.shape[2], 1)
    args = dict(q=x.q, k_cache=x.k_cache, block_table=x.block_table, cache_seqlens=x.cache_seqlens, head_dim_v=512,
                tile_scheduler_metadata=meta, num_splits=splits, softmax_scale=x.softmax_scale, causal=x.causal)
    args.update(override)
    return args


def test_cpu_path_equals_reference_and_keeps_q_dtype():
    x = batch()
    out, lse = ops.mla_decode_with_kvcache(**decode_args(x))
    ref_out, ref_lse = reference.mla_decode_reference(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512,
                                                      x.softmax_scale, True)
    assert out.dtype == x.q.dtype and out.shape == (3, 2, 4, 512) and lse.shape == (3, 4, 2)
    torch.testing.assert_close(out, ref_out.to(out.dtype))
    torch.testing.assert_close(lse, ref_lse)


def test_rope_columns_apart_equal_one_concatenated_query():
    x = batch()
    latent, rope = split_query(x.q)   # as an engine holds them
    split = ops.mla_decode_with_kvcache(**decode_args(x, q=latent, q_rope=rope))
    whole = ops.mla_decode_with_kvcache(**decode_args(x))
    assert torch.equal(split[0], whole[0]) and torch.equal(split[1], whole[1])


def test_flash_mla_alias_is_the_same_op():
    assert ops.flash_mla_with_kvcache is ops.mla_decode_with_kvcache


def test_default_softmax_scale_is_one_over_sqrt_576():
    x = batch()
    out, _ = ops.mla_decode_with_kvcache(**decode_args(x, softmax_scale=None))
    ref, _ = reference.mla_decode_reference(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, 576 ** -0.5, True)
    torch.testing.assert_close(out, ref.to(out.dtype))


def test_metadata_shapes_depend_only_on_batch_and_rows():
    seqlens = torch.tensor([0, 5, 9000], dtype=torch.int32)
    meta, splits = ops.get_mla_metadata(seqlens, 16, 1)
    assert meta.shape == (ops.DEFAULT_NUM_SMS, 8) and meta.dtype == torch.int32
    assert splits.shape == (4,) and splits.dtype == torch.int32
    meta128, _ = ops.get_mla_metadata(seqlens, 128, 1)
    assert meta128.shape == (ops.DEFAULT_NUM_SMS // 2, 8)


@pytest.mark.parametrize("override,argument", [
    (dict(q="not a tensor"), "q"),
    (dict(q=torch.zeros(3, 2, 4, 576)), "q"),                                 # float32
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16)), "q"),           # head dim
    (dict(q=torch.zeros(3, 4, 576, dtype=torch.bfloat16)), "q"),              # 3-D
    (dict(q=torch.zeros(3, 17, 4, 576, dtype=torch.bfloat16)), "q"),          # s_q > 16
    (dict(q=torch.zeros(3, 1, 129, 576, dtype=torch.bfloat16)), "q"),         # h_q > 128
    (dict(q=torch.zeros(3, 2, 4, 1152, dtype=torch.bfloat16)[..., ::2]), "q"),  # strided last dim
    (dict(q=torch.zeros(3, 2, 4, 580, dtype=torch.bfloat16)[..., :576]), "q"),  # rows not 16-byte aligned
    (dict(q=torch.zeros(3 * 2 * 4 * 576 + 8, dtype=torch.bfloat16)[4:-4].view(3, 2, 4, 576)), "q"),  # 8-byte start
    (dict(q_rope=torch.zeros(3, 2, 4, 64, dtype=torch.bfloat16)), "q"),          # q still has its RoPE columns
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16), q_rope="x"), "q_rope"),
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16), q_rope=torch.zeros(3, 2, 4, 64)), "q_rope"),  # dtype
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16), q_rope=torch.zeros(3, 2, 4, 32, dtype=torch.bfloat16)),
     "q_rope"),
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16), q_rope=torch.zeros(3, 2, 2, 64, dtype=torch.bfloat16)),
     "q_rope"),
    (dict(q=torch.zeros(3, 2, 4, 512, dtype=torch.bfloat16),
          q_rope=torch.zeros(3, 2, 4, 68, dtype=torch.bfloat16)[..., 4:]), "q_rope"),  # rows not 16-byte aligned
    (dict(k_cache=torch.zeros(8, 64, 576, dtype=torch.float16)), "k_cache"),  # dtype differs from q
    (dict(k_cache=torch.zeros(8, 32, 576, dtype=torch.bfloat16)), "k_cache"),  # block size 32
    (dict(k_cache=torch.zeros(8, 64, 2, 576, dtype=torch.bfloat16)), "k_cache"),  # two KV heads
    (dict(k_cache=torch.zeros(8, 64, 512, dtype=torch.bfloat16)), "k_cache"),  # head dim
    (dict(k_cache=torch.zeros(8, 64, 580, dtype=torch.bfloat16)[..., :576]), "k_cache"),  # rows not 16-byte aligned
    (dict(block_table=torch.zeros(3, 4, dtype=torch.int64)), "block_table"),
    (dict(block_table=torch.zeros(2, 4, dtype=torch.int32)), "block_table"),   # wrong batch
    (dict(block_table=torch.zeros(4, 3, dtype=torch.int32).t()), "block_table"),  # non-contiguous rows
    (dict(cache_seqlens=torch.zeros(3, dtype=torch.int64)), "cache_seqlens"),
    (dict(cache_seqlens=torch.zeros(4, dtype=torch.int32)), "cache_seqlens"),
    (dict(cache_seqlens=torch.tensor([0, 70, -1], dtype=torch.int32)), "cache_seqlens"),  # negative
    (dict(cache_seqlens=torch.tensor([0, 70, 1000], dtype=torch.int32)), "cache_seqlens"),  # beyond its table row
    (dict(head_dim_v=128), "head_dim_v"),
    (dict(tile_scheduler_metadata=torch.zeros(7, 8, dtype=torch.int32)), "tile_scheduler_metadata"),
    (dict(tile_scheduler_metadata=None), "tile_scheduler_metadata"),
    (dict(num_splits=torch.zeros(3, dtype=torch.int32)), "num_splits"),
    (dict(softmax_scale=-1.0), "softmax_scale"),
    (dict(softmax_scale=math.nan), "softmax_scale"),
    (dict(softmax_scale=True), "softmax_scale"),
    (dict(head_dim_v=512.0), "head_dim_v"),
    (dict(causal=1), "causal"),
])
def test_bad_argument_raises_value_error_naming_it(override, argument):
    x = batch()
    with pytest.raises(ValueError, match=f"^{argument}: expected"):
        ops.mla_decode_with_kvcache(**decode_args(x, **override))


def test_a_bool_scale_is_refused_as_the_likely_misplaced_causal():
    x = batch()
    a = decode_args(x)
    with pytest.raises(ValueError, match=r"^softmax_scale: .*`causal` passed by position.*got True of type bool"):
        ops.mla_decode_with_kvcache(a["q"], a["k_cache"], a["block_table"], a["cache_seqlens"], 512,
                                    a["tile_scheduler_metadata"], a["num_splits"], True)


def test_a_wrong_type_is_named_not_only_its_value():
    numpy = pytest.importorskip("numpy")
    x = batch()
    with pytest.raises(ValueError, match=r"^softmax_scale: expected .*Python float.*of type numpy\.int64"):
        ops.mla_decode_with_kvcache(**decode_args(x, softmax_scale=numpy.int64(16)))
    with pytest.raises(ValueError, match=r"^num_heads_per_head_k: expected .*Python int.*of type numpy\.int64"):
        ops.get_mla_metadata(x.cache_seqlens, numpy.int64(16), 1)
    with pytest.raises(ValueError, match=r"^causal: expected a Python bool, got .* of type numpy\.bool"):
        ops.mla_decode_with_kvcache(**decode_args(x, causal=numpy.bool_(True)))


@pytest.mark.parametrize("args,argument", [((True, 1), "num_heads_per_head_k"), ((8, True), "num_heads_k")])
def test_a_bool_count_is_refused(args, argument):
    with pytest.raises(ValueError, match=f"^{argument}: expected .*Python int.*, got True of type bool"):
        ops.get_mla_metadata(torch.zeros(3, dtype=torch.int32), *args)


def test_a_misaligned_cache_start_is_reported_as_such_not_as_bad_strides():
    x = batch()
    pages = x.k_cache[:, :, 0]
    shifted = torch.zeros(pages.numel() + 8, dtype=pages.dtype)[4:4 + pages.numel()].view(pages.shape)  # 8 bytes in
    shifted.copy_(pages)
    assert shifted.stride() == pages.stride()
    with pytest.raises(ValueError, match=r"^k_cache: expected a 16-byte aligned start address .*8 bytes past") as info:
        ops.mla_decode_with_kvcache(**decode_args(x, k_cache=shifted))
    assert "strides" not in str(info.value)


def test_page_index_outside_the_cache_is_refused():
    x = batch()
    table = x.block_table.clone()
    table[1, 0] = x.k_cache.shape[0]
    with pytest.raises(ValueError, match="^block_table: expected page indices"):
        ops.mla_decode_with_kvcache(**decode_args(x, block_table=table))


def test_unused_table_entries_may_hold_anything():
    x = batch()   # entries past each request's last page hold 2147480000
    ops.mla_decode_with_kvcache(**decode_args(x))


def test_tensor_on_another_device_is_refused():
    x = batch()
    with pytest.raises(ValueError, match="^k_cache: expected a tensor on cpu"):
        ops.mla_decode_with_kvcache(**decode_args(x, k_cache=x.k_cache.to("meta")))


@pytest.mark.parametrize("args,argument", [
    ((torch.zeros(3, dtype=torch.int64), 16, 1), "cache_seqlens"),
    ((torch.zeros(3, 1, dtype=torch.int32), 16, 1), "cache_seqlens"),
    ((torch.zeros(0, dtype=torch.int32), 16, 1), "cache_seqlens"),
    ((torch.zeros(3, dtype=torch.int32), 16, 2), "num_heads_k"),
    ((torch.zeros(3, dtype=torch.int32), 0, 1), "num_heads_per_head_k"),
    ((torch.zeros(3, dtype=torch.int32), 16 * 128 + 1, 1), "num_heads_per_head_k"),
])
def test_bad_metadata_argument_raises_value_error_naming_it(args, argument):
    with pytest.raises(ValueError, match=f"^{argument}: expected"):
        ops.get_mla_metadata(*args)


def test_non_hopper_gpu_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    with pytest.raises(RuntimeError, match="Hopper.*A100.*8.0"):
        ops._check_hopper(torch.device("cuda", 0))


def test_ops_trace_under_torch_compile_with_fake_kernels():
    x = batch()

    @torch.compile(fullgraph=True, backend="eager")
    def step(q, k_cache, block_table, cache_seqlens):
        meta, splits = torch.ops.mla_backend.tile_scheduler(cache_seqlens, ops.DEFAULT_NUM_SMS // 1, 5)
        return torch.ops.mla_backend.decode_paged(q, None, k_cache[:, :, 0], block_table, cache_seqlens, meta, splits,
                                                  x.softmax_scale, True)

    out, lse = step(x.q, x.k_cache, x.block_table, x.cache_seqlens)
    ref_out, ref_lse = reference.mla_decode_reference(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512,
                                                      x.softmax_scale, True)
    torch.testing.assert_close(out, ref_out.to(out.dtype))
    torch.testing.assert_close(lse, ref_lse)


def test_fake_kernels_give_the_contract_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    x = batch()
    kv = x.k_cache[:, :, 0]
    with FakeTensorMode() as mode:
        q, k, t, s = (mode.from_tensor(v) for v in (x.q, kv, x.block_table, x.cache_seqlens))
        meta, splits = torch.ops.mla_backend.tile_scheduler(s, 66, 5)
        out, lse = torch.ops.mla_backend.decode_paged(q, None, k, t, s, meta, splits, 0.1, True)
    assert meta.shape == (66, 8) and splits.shape == (4,)
    assert out.shape == (3, 2, 4, 512) and out.dtype == torch.bfloat16
    assert lse.shape == (3, 4, 2) and lse.dtype == torch.float32


def test_check_values_false_skips_only_the_value_checks(monkeypatch):
    x = batch()
    calls = []
    monkeypatch.setattr(ops, "_check_values", lambda *args: calls.append(args))
    ops.mla_decode_with_kvcache(**decode_args(x), check_values=False)
    assert calls == []
    ops.mla_decode_with_kvcache(**decode_args(x))
    assert len(calls) == 1
    with pytest.raises(ValueError, match="^head_dim_v: expected"):
        ops.mla_decode_with_kvcache(**decode_args(x, head_dim_v=128), check_values=False)


# --- fp8 (e4m3) KV cache ---------------------------------------------------------------------------------

FP8 = torch.float8_e4m3fn


def fp8_batch(**kw):
    return batch(kv_dtype=FP8, **kw)


def fp8_reference(x, descale_k):
    """The reference on the dequantized cache, with the query rounded as the kernel does."""
    return reference.mla_decode_reference(reference.quantize_query_rows(x.q),
                                          reference.dequantize_kv(x.k_cache, descale_k), x.block_table,
                                          x.cache_seqlens, 512, x.softmax_scale, True)


def test_fp8_cache_cpu_path_equals_reference_on_the_dequantized_cache():
    x = fp8_batch()
    out, lse = ops.mla_decode_with_kvcache(**decode_args(x), descale_k=x.descale_k)
    ref_out, ref_lse = fp8_reference(x, x.descale_k)
    assert out.dtype == x.q.dtype and out.shape == (3, 2, 4, 512)
    torch.testing.assert_close(out, ref_out.to(out.dtype), rtol=0, atol=0)
    torch.testing.assert_close(lse, ref_lse, rtol=0, atol=0)


def test_the_fp8_query_rounding_keeps_each_rows_largest_value_and_zero_rows():
    q = torch.randn(2, 1, 3, 576, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(0))
    q[1, 0, 2] = 0
    rounded = reference.quantize_query_rows(q)
    amax = q.float().abs().amax(-1)
    torch.testing.assert_close(rounded.abs().amax(-1), amax, rtol=1e-6, atol=0)   # 448 is an e4m3 value
    assert (rounded[1, 0, 2] == 0).all()
    rel = ((rounded - q.float()).norm() / q.float().norm()).item()
    assert 0.005 < rel < 0.05   # e4m3: 3 mantissa bits
    tiny = reference.quantize_query_rows(torch.full((1, 1, 1, 576), 1e-38))   # 448 / 1e-38 would overflow
    assert torch.isfinite(tiny).all()


def test_fp8_cache_takes_a_0_dim_scale_and_fp16_queries():
    x = fp8_batch(dtype=torch.float16)
    first = ops.mla_decode_with_kvcache(**decode_args(x), descale_k=x.descale_k)
    second = ops.mla_decode_with_kvcache(**decode_args(x), descale_k=x.descale_k.reshape(()))
    assert first[0].dtype == torch.float16
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_descale_k_scales_k_and_v():
    x = fp8_batch()
    twice = ops.mla_decode_with_kvcache(**decode_args(x), descale_k=x.descale_k * 2)
    ref_out, ref_lse = fp8_reference(x, x.descale_k * 2)
    torch.testing.assert_close(twice[0], ref_out.to(twice[0].dtype), rtol=0, atol=0)
    torch.testing.assert_close(twice[1], ref_lse, rtol=0, atol=0)


@pytest.mark.parametrize("override,argument,says", [
    (dict(), "descale_k", "float32 tensor of shape \\[1\\].*got None"),                       # fp8 without a scale
    (dict(descale_k=torch.ones(1, dtype=torch.float64)), "descale_k", "float32"),
    (dict(descale_k=torch.ones(2)), "descale_k", "shape \\[1\\]"),
    (dict(descale_k=torch.ones(1, 1)), "descale_k", "shape \\[1\\]"),
    (dict(descale_k=1.0), "descale_k", "of type float"),                                       # a Python float
    (dict(descale_k=torch.ones(1, device="meta")), "descale_k", "on cpu"),
    (dict(descale_k=torch.zeros(1)), "descale_k", "finite positive"),
    (dict(descale_k=torch.full((1,), math.nan)), "descale_k", "finite positive"),
    (dict(descale_q=torch.ones(1), descale_k=torch.ones(1)), "descale_q", "not supported yet"),
])
def test_bad_fp8_scale_is_refused_by_name(override, argument, says):
    x = fp8_batch()
    with pytest.raises(ValueError, match=f"^{argument}: expected .*{says}"):
        ops.mla_decode_with_kvcache(**decode_args(x), **override)


def test_fp8_plans_for_17_to_32_rows_of_one_request_take_half_the_parts():
    seqlens = torch.tensor([9000], dtype=torch.int32)
    halves, _ = ops.get_mla_metadata(seqlens, 32, 1, is_fp8_kvcache=True)
    assert halves.shape == (ops.DEFAULT_NUM_SMS // 2, 8)
    past_the_limit = torch.zeros(tile_scheduler.FP8_ROW_HALVES_MAX_BATCH + 1, dtype=torch.int32)
    for rows, lens in ((16, seqlens), (33, seqlens), (32, past_the_limit)):
        assert ops.get_mla_metadata(lens, rows, 1, is_fp8_kvcache=True)[0].shape == \
            ops.get_mla_metadata(lens, rows, 1)[0].shape
    with pytest.raises(ValueError, match="^is_fp8_kvcache: expected a Python bool"):
        ops.get_mla_metadata(seqlens, 32, 1, is_fp8_kvcache=1)


def test_num_sm_parts_needs_the_batch_with_is_fp8_kvcache():
    cpu = torch.device("cpu")
    past_the_limit = tile_scheduler.FP8_ROW_HALVES_MAX_BATCH + 1
    assert ops.num_sm_parts(32, cpu) == ops.num_sm_parts(32, cpu, is_fp8_kvcache=True, batch=past_the_limit)
    assert ops.num_sm_parts(32, cpu, is_fp8_kvcache=True, batch=1) == ops.num_sm_parts(32, cpu) // 2
    for batch in (None, True, -1, 4.0):
        with pytest.raises(ValueError, match="^batch: expected the number of requests"):
            ops.num_sm_parts(32, cpu, is_fp8_kvcache=True, batch=batch)


def test_an_fp8_cache_takes_both_plans_of_17_to_32_rows_and_a_16_bit_cache_only_its_own():
    x = fp8_batch(b=1, s_q=2, h_q=16, seqlens=(130,))   # one request: the plan for row halves
    halves = ops.get_mla_metadata(x.cache_seqlens, 32, 1, is_fp8_kvcache=True)
    args = decode_args(x, descale_k=x.descale_k)
    whole = ops.mla_decode_with_kvcache(**args)
    halved = ops.mla_decode_with_kvcache(**dict(args, tile_scheduler_metadata=halves[0], num_splits=halves[1]))
    assert torch.equal(whole[0], halved[0]) and torch.equal(whole[1], halved[1])
    y = batch(b=1, s_q=2, h_q=16, seqlens=(130,))
    with pytest.raises(ValueError, match=r"^tile_scheduler_metadata: expected .*shape \(132, 8\) from get_mla_metadata"
                                         r"\(cache_seqlens, 32, 1\), got"):
        ops.mla_decode_with_kvcache(**decode_args(y, tile_scheduler_metadata=halves[0]))
    with pytest.raises(ValueError, match=r"or \(66, 8\) from the same with is_fp8_kvcache=True"):
        ops.mla_decode_with_kvcache(**dict(args, tile_scheduler_metadata=halves[0][:33]))


def test_fp8_query_is_refused_as_not_yet_supported():
    x = fp8_batch()
    with pytest.raises(ValueError, match="^q: expected dtype torch.bfloat16 or torch.float16 .*not supported yet"):
        ops.mla_decode_with_kvcache(**decode_args(x, q=x.q.to(FP8)), descale_q=torch.ones(1),
                                    descale_k=x.descale_k)


def test_fp8_query_with_a_16_bit_cache_is_refused():
    x = batch()
    with pytest.raises(ValueError, match="^q: expected .*would also need a float8_e4m3fn k_cache"):
        ops.mla_decode_with_kvcache(**decode_args(x, q=x.q.to(FP8)), descale_q=torch.ones(1))


def test_descale_k_with_a_16_bit_cache_is_refused():
    x = batch()
    with pytest.raises(ValueError, match="^descale_k: expected None for a torch.bfloat16 k_cache"):
        ops.mla_decode_with_kvcache(**decode_args(x), descale_k=torch.ones(1))


@pytest.mark.parametrize("dtype", [torch.float8_e5m2, torch.float8_e4m3fnuz])
def test_other_fp8_caches_are_refused_by_dtype(dtype):
    x = fp8_batch()
    with pytest.raises(ValueError, match=f"^k_cache: expected .*float8_e4m3fn.*{dtype} caches are not supported"):
        ops.mla_decode_with_kvcache(**decode_args(x, k_cache=x.k_cache.float().to(dtype)), descale_k=x.descale_k)


@pytest.mark.parametrize("s_q,h_q", [(1, 32), (2, 16), (16, 2), (1, 64), (2, 32), (16, 4), (2, 128)])
def test_fp8_cache_takes_any_query_rows_and_mirrors_the_kernels_operands(s_q, h_q):
    # every fp8 kernel runs Q.K^T in fp8: the query rounded to e4m3 per row, the cache dequantized in fp32
    x = make_batch(2, s_q, h_q, [70, 1], device="cpu", causal=True, kv_dtype=FP8)
    out, lse = ops.mla_decode_with_kvcache(**decode_args(x), descale_k=x.descale_k)
    q, k = reference.quantize_query_rows(x.q), reference.dequantize_kv(x.k_cache, x.descale_k)
    ref_out, ref_lse = reference.mla_decode_reference(q, k, x.block_table, x.cache_seqlens, 512, x.softmax_scale, True)
    torch.testing.assert_close(out, ref_out.to(out.dtype), rtol=0, atol=0)
    torch.testing.assert_close(lse, ref_lse, rtol=0, atol=0)


def test_fp8_cache_rows_must_be_16_byte_aligned():
    x = fp8_batch()
    pages = x.k_cache[:, :, 0]
    wide = torch.zeros(pages.shape[0], 64, 584, dtype=torch.uint8).view(FP8)   # rows 584 bytes apart
    wide[..., :576] = pages
    with pytest.raises(ValueError, match="^k_cache: expected .*strides multiples of 16"):
        ops.mla_decode_with_kvcache(**decode_args(x, k_cache=wide[..., :576]), descale_k=x.descale_k)
    aligned = torch.zeros(pages.shape[0], 64, 592, dtype=torch.uint8).view(FP8)   # 592 = 37 * 16
    aligned[..., :576] = pages
    ops.mla_decode_with_kvcache(**decode_args(x, k_cache=aligned[..., :576]), descale_k=x.descale_k)


def test_fp8_decode_traces_under_torch_compile_with_fake_kernels():
    x = fp8_batch()

    @torch.compile(fullgraph=True, backend="eager")
    def step(q, k_cache, block_table, cache_seqlens, descale_k):
        meta, splits = torch.ops.mla_backend.tile_scheduler(cache_seqlens, ops.DEFAULT_NUM_SMS, 3)
        return torch.ops.mla_backend.decode_paged(q, None, k_cache[:, :, 0], block_table, cache_seqlens, meta, splits,
                                                  x.softmax_scale, True, descale_k)

    out, lse = step(x.q, x.k_cache, x.block_table, x.cache_seqlens, x.descale_k)
    ref_out, ref_lse = fp8_reference(x, x.descale_k)
    torch.testing.assert_close(out, ref_out.to(out.dtype))
    torch.testing.assert_close(lse, ref_lse)
