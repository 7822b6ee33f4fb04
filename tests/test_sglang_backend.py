"""The SGLang backend's own code on CPU (our ops run the fp32 reference on CPU tensors): the refusals at
construction, the per-step metadata (eager, and in the persistent CUDA-graph buffers), and decode / target-verify
against attention over each request's tokens, from a bf16 pool and from an fp8 (e4m3) one. SGLang's FlashMLA parent
is stood in for where it would allocate GPU state; everything it hands to our methods is shaped as SGLang shapes
it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

pytest.importorskip("sglang", reason="SGLang is not installed (CI installs it in a venv of its own for these tests)")
try:
    from sglang.srt.layers.attention import flashmla_backend
except (ImportError, OSError) as exc:  # its FlashMLA kernel library links libcuda.so.1, the NVIDIA driver's
    pytest.skip(f"SGLang's FlashMLA backend does not import without an NVIDIA driver: {exc}", allow_module_level=True)

from mla_backend import ops, reference
from mla_backend.sglang import backend as ours
from mla_backend.testing import split_query
from test_sglang_pages import dense_reference, sglang_pool

HEADS = 16
SCALE = 0.11


class Mode:
    def __init__(self, name: str):
        self.name = name

    def is_decode_or_idle(self):
        return self.name in ("decode", "idle")

    def is_target_verify(self):
        return self.name == "verify"

    def is_draft_extend_v2(self):
        return self.name == "draft_extend"


class KVPool:
    """SGLang's MLA token pool for one layer: [slots, 1, 576]."""

    def __init__(self, kv: torch.Tensor):
        self.kv = kv.bfloat16().view(-1, 1, ops.HEAD_DIM)

    def get_key_buffer(self, layer_id):
        return self.kv

    def set_kv_buffer(self, layer, loc, k, v):
        loc = getattr(loc, "loc", loc)  # SGLang >= 0.5.18 wraps out_cache_loc in a KVWriteLoc
        self.kv[loc] = k.view(-1, 1, ops.HEAD_DIM)

    def set_mla_kv_buffer(self, layer, loc, k_nope, k_rope):
        self.set_kv_buffer(layer, loc, joined_k(k_nope, k_rope), None)


class FP8KVPool:
    """SGLang's MLA token pool with --kv-cache-dtype fp8_e4m3 (MLATokenToKVPool, 0.5.17 and 0.5.23): uint8 storage,
    written as `k.to(float8_e4m3fn)` with no scale, read back viewed as float8_e4m3fn."""

    def __init__(self, kv: torch.Tensor):
        self.store = kv.to(torch.float8_e4m3fn).view(torch.uint8).view(-1, 1, ops.HEAD_DIM)

    @property
    def kv(self):
        return self.store.view(torch.float8_e4m3fn)

    def get_key_buffer(self, layer_id):
        return self.kv

    def set_kv_buffer(self, layer, loc, k, v):
        loc = getattr(loc, "loc", loc)
        self.store[loc] = k.to(torch.float8_e4m3fn).view(torch.uint8).view(-1, 1, ops.HEAD_DIM)

    set_mla_kv_buffer = KVPool.set_mla_kv_buffer   # joins the parts, then this pool's set_kv_buffer


def joined_k(k_nope: torch.Tensor, k_rope: torch.Tensor) -> torch.Tensor:
    """What SGLang's set_mla_kv_buffer stores for a token: its 512 latent columns, then its 64 RoPE columns."""
    return torch.cat([k_nope.view(-1, 1, 512), k_rope.view(-1, 1, ops.ROPE_DIM)], dim=-1)


def fake_parent_init(self, model_runner, skip_prefill=False, kv_indptr_buf=None, kv_last_page_len_buf=None):
    """What FlashMLABackend.__init__ sets that our code reads (the real one allocates FlashInfer state on a GPU)."""
    cfg = model_runner.model_config
    self.num_q_heads = cfg.num_attention_heads
    self.req_to_token = model_runner.req_to_token_pool.req_to_token
    self.token_to_kv_pool = model_runner.token_to_kv_pool
    self.kv_lora_rank, self.qk_rope_head_dim = cfg.kv_lora_rank, cfg.qk_rope_head_dim
    self.kv_cache_dim = cfg.kv_lora_rank + cfg.qk_rope_head_dim
    self.data_type, self.q_data_type = model_runner.kv_cache_dtype, model_runner.dtype
    self.num_draft_tokens = model_runner.num_draft_tokens
    self.dcp_world_size = 1
    self.device = torch.device("cpu")
    self.forward_metadata = None


def model_runner(req_to_token, kv, heads=HEADS, **override):
    """heads: query heads per GPU (SGLang's num_attention_heads // attention TP size, as FlashMLA reads them)."""
    fp8 = override.get("kv_cache_dtype") == torch.float8_e4m3fn
    runner = SimpleNamespace(
        model_config=SimpleNamespace(num_attention_heads=heads, kv_lora_rank=512, qk_rope_head_dim=64),
        req_to_token_pool=SimpleNamespace(req_to_token=req_to_token),
        token_to_kv_pool=FP8KVPool(kv) if fp8 else KVPool(kv),
        kv_cache_dtype=torch.bfloat16, dtype=torch.bfloat16, page_size=64, num_draft_tokens=None,
        is_draft_worker=False)
    for key, value in override.items():
        setattr(runner, key, value)
    return runner


@pytest.fixture
def make_backend(monkeypatch):
    monkeypatch.setattr(flashmla_backend.FlashMLABackend, "__init__", fake_parent_init)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    return lambda runner: ours.MLABackend(runner)


def batch(mode: str, seq_lens: list[int], rows: torch.Tensor):
    return SimpleNamespace(forward_mode=Mode(mode), batch_size=len(seq_lens),
                           seq_lens=torch.tensor(seq_lens, dtype=torch.int64), req_pool_indices=rows,
                           out_cache_loc=None, out_cache_loc_is_physical=False)


LAYER = SimpleNamespace(tp_q_head_num=HEADS, tp_k_head_num=1, tp_v_head_num=1, head_dim=ops.HEAD_DIM, v_head_dim=512,
                        scaling=SCALE, layer_id=0, k_scale=None, k_scale_float=None)


class GraphRunner:
    """SGLang's decode CUDA-graph runner (0.5.17 and 0.5.23, decode_cuda_graph_runner.py) as our backend sees it:
    static input buffers; capture = init_forward_metadata_out_graph(in_capture=True), then the warm-ups and the
    capture each run init_forward_metadata_in_graph inside the captured forward; a replay copies the step's
    req_pool_indices / seq_lens into the static buffers, calls init_forward_metadata_out_graph on a view of them,
    then replays the graph, which re-runs what in_graph recorded (here: in_graph called again on the capture
    batch, whose tensors are the static buffers)."""

    def __init__(self, backend, mode: str, max_bs: int = 8):
        self.backend, self.mode = backend, mode
        self.seq_lens = torch.full((max_bs,), 1, dtype=torch.int64)   # filled with get_cuda_graph_seq_len_fill_value
        self.req_pool_indices = torch.zeros(max_bs, dtype=torch.int64)
        backend.init_cuda_graph_state = lambda *a, **k: None          # the parent's would allocate on a GPU
        backend._graph_buffers = backend._allocate_graph_buffers(max_bs)
        backend._graph_buffers.block_table.fill_(-1)
        self.captured = {}

    def static_batch(self, bs: int):
        fb = batch(self.mode, [1] * bs, self.req_pool_indices[:bs])
        fb.seq_lens = self.seq_lens[:bs]
        return fb

    def capture(self, bs: int):
        fb = self.static_batch(bs)
        self.backend.init_forward_metadata_out_graph(fb, in_capture=True)
        for _ in range(3):  # two warm-ups, then the capture
            self.backend.init_forward_metadata_in_graph(fb)
        self.captured[bs] = fb

    def replay(self, seq_lens: list[int], rows: torch.Tensor):
        bs = len(seq_lens)
        self.seq_lens[:bs] = torch.tensor(seq_lens)
        self.req_pool_indices[:bs] = rows
        self.backend.init_forward_metadata_out_graph(self.static_batch(bs))
        self.backend.init_forward_metadata_in_graph(self.captured[bs])


BF16, FP8 = torch.bfloat16, torch.float8_e4m3fn


@pytest.mark.parametrize("mode,q_len,graph,kv_dtype", [
    ("decode", 1, False, BF16), ("decode", 1, True, BF16), ("verify", 3, False, BF16), ("verify", 3, True, BF16),
    # 16 heads x 2 verify tokens = 32 query rows: the most the fp8 kernel takes
    ("decode", 1, False, FP8), ("decode", 1, True, FP8), ("verify", 2, False, FP8), ("verify", 2, True, FP8),
])
def test_decode_and_verify_match_attention_over_each_requests_tokens(make_backend, mode, q_len, graph, kv_dtype):
    """The reference reads what the pool holds: an fp8 pool's keys are K cast to e4m3, unscaled."""
    cached = [1, 64, 65, 200, 700]               # tokens in the cache, draft tokens included for verify
    seq_lens = [n - (q_len if mode == "verify" else 0) for n in cached]
    kv, req_to_token, rows = sglang_pool(cached, 64, max_context_len=1024, pool_rows=8, seed=3)
    backend = make_backend(model_runner(req_to_token, kv, num_draft_tokens=q_len if mode == "verify" else None,
                                        kv_cache_dtype=kv_dtype))
    if graph:
        runner = GraphRunner(backend, mode)
        runner.capture(len(cached))
        runner.replay(seq_lens, rows)
        buffers = backend._graph_buffers
        assert backend.forward_metadata.block_table.data_ptr() == buffers.block_table.data_ptr()
        assert backend.forward_metadata.num_splits.data_ptr() == buffers.plan.num_splits.data_ptr()
        assert backend.forward_metadata.cache_seqlens.data_ptr() == buffers.cache_seqlens.data_ptr()
        assert backend.forward_metadata.tile_scheduler_metadata.data_ptr() == \
            buffers.plan.tile_scheduler_metadata.data_ptr()
    else:
        backend.init_forward_metadata(batch(mode, seq_lens, rows))
    # an fp8 pool's plan is made for it (get_mla_metadata's is_fp8_kvcache: row halves for one request of 17-32 rows)
    expected_plan = ops.get_mla_metadata(torch.tensor(cached, dtype=torch.int32), q_len * HEADS, 1, kv_dtype == FP8)
    assert torch.equal(backend.forward_metadata.tile_scheduler_metadata, expected_plan[0])
    assert torch.equal(backend.forward_metadata.num_splits, expected_plan[1])
    assert backend.forward_metadata.cache_seqlens.tolist() == cached

    q = torch.randn(len(cached) * q_len, HEADS * ops.HEAD_DIM, generator=torch.Generator().manual_seed(0))
    fb = batch(mode, seq_lens, rows)
    forward = backend.forward_decode if mode == "decode" else backend.forward_extend
    out = forward(q.bfloat16(), None, None, LAYER, fb, save_kv_cache=False)
    assert out.shape == (len(cached) * q_len, HEADS * 512)
    q = q.bfloat16().view(len(cached), q_len, HEADS, ops.HEAD_DIM)
    expected = dense_reference(reference.quantize_query_rows(q) if kv_dtype == FP8 else q, kv.to(kv_dtype).float(),
                               req_to_token, rows, cached, SCALE)
    torch.testing.assert_close(out.float().view_as(expected), expected, rtol=2e-2, atol=2e-2)


class OpLog(TorchDispatchMode):
    """The aten (and mla_backend) ops a block of code dispatches."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


# Ops that copy a value to the host (a sync on a GPU) or have data-dependent output shapes.
SYNCING_OPS = {"aten._local_scalar_dense", "aten.item", "aten.nonzero", "aten.nonzero_static", "aten.masked_select",
               "aten.is_nonzero", "aten.equal", "aten.unique", "aten._unique2", "aten.repeat_interleave",
               "aten._to_copy"}


VIEW_OPS = {"aten.slice", "aten.view", "aten.select", "aten.as_strided", "aten.alias", "aten.detach"}


def test_a_decode_replay_does_nothing_on_the_host_but_a_lookup(make_backend):
    """Per decode step under CUDA graphs, what runs on the host before the replay dispatches no tensor op: the
    block table, key counts and plan are recomputed inside the graph."""
    kv, req_to_token, rows = sglang_pool([100, 300, 5], 64, max_context_len=1024, pool_rows=8, seed=1)
    backend = make_backend(model_runner(req_to_token, kv))
    runner = GraphRunner(backend, "decode")
    for bs in (1, 2, 4):
        runner.capture(bs)
    views = [runner.static_batch(4) for _ in range(3)]  # SGLang's replay views (slices of its static buffers)
    with OpLog() as log:
        for view in views:
            backend.init_forward_metadata_out_graph(view)
    assert log.ops == []
    assert backend.forward_metadata is backend._graph_buffers.view(4, 1)
    with OpLog() as log:  # what the graph replays
        backend.init_forward_metadata_in_graph(runner.captured[4])
    kernels = [op for op in log.ops if op not in VIEW_OPS]
    # the block table (gather, divide), the key counts (one casting copy), the plan and its two copies
    assert sorted(kernels) == sorted(["aten.index_select", "aten.floor_divide_", "aten.copy_",
                                      "mla_backend.tile_scheduler", "aten.copy_", "aten.copy_"]), log.ops


def test_a_verify_step_is_prepared_before_the_replay_and_never_syncs(make_backend):
    """Target verify keeps FlashMLA's placement (SGLang's prefill graph runner also replays verify steps and
    calls only init_forward_metadata_out_graph); the graph's in-graph hook then does nothing for it."""
    kv, req_to_token, rows = sglang_pool([100, 300], 64, max_context_len=1024, pool_rows=8, seed=2)
    backend = make_backend(model_runner(req_to_token, kv, num_draft_tokens=3))
    runner = GraphRunner(backend, "verify")
    runner.capture(2)
    with OpLog() as log:
        backend.init_forward_metadata_out_graph(batch("verify", [97, 297], rows))
    assert "mla_backend.tile_scheduler" in log.ops and not SYNCING_OPS & set(log.ops), log.ops
    assert backend.forward_metadata.cache_seqlens.tolist() == [100, 300]
    with OpLog() as log:
        backend.init_forward_metadata_in_graph(runner.captured[2])
    assert log.ops == []


def test_without_graph_state_the_out_of_graph_hook_prepares_the_step(make_backend):
    """SGLang's default init_forward_metadata is out_graph then in_graph: with no CUDA-graph buffers (graphs off),
    the first computes the step and the second adds nothing."""
    kv, req_to_token, rows = sglang_pool([100, 300], 64, max_context_len=1024, pool_rows=8, seed=2)
    backend = make_backend(model_runner(req_to_token, kv))
    fb = batch("decode", [100, 300], rows)
    backend.init_forward_metadata_out_graph(fb)
    assert backend.forward_metadata.cache_seqlens.tolist() == [100, 300]
    with OpLog() as log:
        backend.init_forward_metadata_in_graph(fb)
    assert log.ops == []


def test_the_eager_metadata_never_syncs(make_backend):
    kv, req_to_token, rows = sglang_pool([100, 300], 64, max_context_len=1024, pool_rows=8, seed=2)
    backend = make_backend(model_runner(req_to_token, kv))
    with OpLog() as log:
        backend.init_forward_metadata(batch("decode", [100, 300], rows))
    # seq_lens int64 -> int32 is the one _to_copy, on the device
    assert not (SYNCING_OPS - {"aten._to_copy"}) & set(log.ops), log.ops


def test_the_new_token_is_written_before_it_is_read(make_backend):
    kv, req_to_token, rows = sglang_pool([130], 64, max_context_len=256, pool_rows=2, seed=5)
    backend = make_backend(model_runner(req_to_token, kv))
    last_slot = req_to_token[rows[0], 129].long()
    new_k = torch.randn(1, ops.HEAD_DIM).bfloat16()
    fb = batch("decode", [130], rows)
    fb.out_cache_loc = last_slot.view(1)
    backend.init_forward_metadata(fb)
    backend.forward_decode(torch.randn(1, HEADS * ops.HEAD_DIM).bfloat16(), new_k, new_k, LAYER, fb)
    assert torch.equal(backend.token_to_kv_pool.kv[last_slot, 0], new_k[0])


def test_an_idle_step_attends_to_nothing(make_backend):
    kv, req_to_token, _ = sglang_pool([10], 64, max_context_len=128, pool_rows=2, seed=0)
    backend = make_backend(model_runner(req_to_token, kv))
    fb = batch("idle", [], torch.zeros(0, dtype=torch.int64))
    backend.init_forward_metadata(fb)
    assert backend.forward_decode(torch.zeros(0, HEADS * ops.HEAD_DIM), None, None, LAYER, fb).shape == (0, HEADS * 512)


@pytest.mark.parametrize("override,words", [
    (dict(page_size=16), "pass --page-size 64"),
    (dict(kv_cache_dtype=torch.float8_e5m2), "fp8 KV caches in e4m3 only, got kv_cache_dtype=torch.float8_e5m2 "
                                             "(pass --kv-cache-dtype fp8_e4m3, or auto"),
    (dict(kv_cache_dtype=torch.float8_e4m3fn, heads=128),           # DeepSeek-V3 at --tp-size 1
     "got 128 heads x 1 token = 128: pass a --tp-size at least 4x larger (32 query heads per GPU or fewer), or "
     "--kv-cache-dtype auto"),
    (dict(kv_cache_dtype=torch.float8_e4m3fn, heads=64, server_args=SimpleNamespace(kv_cache_dtype="auto")),
     "or --kv-cache-dtype bf16 (a bf16/fp16 cache)"),               # fp8 from the checkpoint's kv_cache_quant_algo
    (dict(kv_cache_dtype=torch.float8_e4m3fn, kv_cache_dtype_str="mxfp8"),
     "not mxfp8 (pass --kv-cache-dtype fp8_e4m3)"),
    (dict(kv_cache_dtype=torch.float8_e4m3fn, num_draft_tokens=3),  # 16 heads x 3 = 48 rows
     "16 heads x 3 tokens = 48 (speculative decoding with 2 draft tokens): pass a --tp-size at least 2x larger"),
    (dict(kv_cache_dtype=torch.float16), "in the model's dtype (torch.bfloat16), got torch.float16"),
    (dict(num_draft_tokens=20), "speculative decoding with 19 draft tokens"),
    (dict(is_draft_worker=True), "--speculative-draft-attention-backend flashmla"),
])
def test_what_the_kernel_cannot_run_is_refused_at_startup(make_backend, override, words):
    kv, req_to_token, _ = sglang_pool([10], 64, max_context_len=128, pool_rows=2, seed=0)
    with pytest.raises(ValueError, match="^mla_backend: ") as info:
        make_backend(model_runner(req_to_token, kv, **override))
    assert words in str(info.value)


@pytest.mark.parametrize("heads,draft", [(16, None), (32, None), (16, 2), (8, 4)])
def test_fp8_e4m3_is_served_up_to_32_query_rows(make_backend, heads, draft):
    """DeepSeek-V3 at --tp-size 8 (16 heads, MTP with one draft token) or 4 (32 heads); descale_k made once."""
    kv, req_to_token, _ = sglang_pool([10], 64, max_context_len=128, pool_rows=2, seed=0)
    backend = make_backend(model_runner(req_to_token, kv, heads=heads, num_draft_tokens=draft,
                                        kv_cache_dtype=torch.float8_e4m3fn))
    assert backend._descale_k.dtype == torch.float32 and backend._descale_k.tolist() == [1.0]
    bf16 = make_backend(model_runner(req_to_token, kv, heads=heads, num_draft_tokens=draft))
    assert bf16._descale_k is None


def fp8_decode_step(make_backend, layer, monkeypatch=None, steps=1):
    kv, req_to_token, rows = sglang_pool([100, 300], 64, max_context_len=512, pool_rows=4, seed=7)
    backend = make_backend(model_runner(req_to_token, kv, kv_cache_dtype=torch.float8_e4m3fn))
    seen = []
    if monkeypatch is not None:
        real = ops.mla_decode_with_kvcache

        def spy(*args, **kwargs):
            seen.append(kwargs["descale_k"])
            return real(*args, **kwargs)

        monkeypatch.setattr(ops, "mla_decode_with_kvcache", spy)
    q = torch.randn(2, HEADS * ops.HEAD_DIM, generator=torch.Generator().manual_seed(1)).bfloat16()
    fb = batch("decode", [100, 300], rows)
    backend.init_forward_metadata(fb)
    outs = [backend.forward_decode(q, None, None, layer, fb, save_kv_cache=False) for _ in range(steps)]
    expected = dense_reference(reference.quantize_query_rows(q.view(2, 1, HEADS, ops.HEAD_DIM)),
                               kv.to(torch.float8_e4m3fn).float(), req_to_token, rows, [100, 300], SCALE)
    return backend, outs, expected, seen


def test_fp8_descale_k_is_one_tensor_for_every_step(make_backend, monkeypatch):
    """The same device tensor in every layer and step (a captured graph reads it at its address)."""
    backend, _, _, seen = fp8_decode_step(make_backend, LAYER, monkeypatch, steps=3)
    assert len(seen) == 3 and all(t is backend._descale_k for t in seen)


def test_fp8_layer_k_scale_is_not_applied_to_keys_the_pool_wrote_unscaled(make_backend):
    """SGLang's MLA pool casts K to e4m3 without dividing by k_scale, so reading it with k_scale (FlashMLA's
    choice) would scale every key: with a checkpoint k_scale of 2, the output is still attention over K."""
    layer = SimpleNamespace(**{**vars(LAYER), "k_scale": torch.tensor(2.0), "k_scale_float": 2.0})
    _, (out,), expected, _ = fp8_decode_step(make_backend, layer)
    torch.testing.assert_close(out.float().view_as(expected), expected, rtol=2e-2, atol=2e-2)


def test_fp8_new_token_is_written_as_e4m3_before_it_is_read(make_backend):
    kv, req_to_token, rows = sglang_pool([130], 64, max_context_len=256, pool_rows=2, seed=5)
    backend = make_backend(model_runner(req_to_token, kv, kv_cache_dtype=torch.float8_e4m3fn))
    last_slot = req_to_token[rows[0], 129].long()
    new_k = torch.randn(1, ops.HEAD_DIM).bfloat16()
    fb = batch("decode", [130], rows)
    fb.out_cache_loc = last_slot.view(1)
    backend.init_forward_metadata(fb)
    q = torch.randn(1, HEADS * ops.HEAD_DIM).bfloat16()
    out = backend.forward_decode(q, new_k, new_k, LAYER, fb)
    assert torch.equal(backend.token_to_kv_pool.kv[last_slot, 0], new_k[0].to(torch.float8_e4m3fn))
    pool = backend.token_to_kv_pool.kv.float().view(-1, ops.HEAD_DIM)
    expected = dense_reference(reference.quantize_query_rows(q.view(1, 1, HEADS, ops.HEAD_DIM)), pool, req_to_token,
                               rows, [130], SCALE)
    torch.testing.assert_close(out.float().view_as(expected), expected, rtol=2e-2, atol=2e-2)


def test_a_draft_extend_step_says_what_to_do(make_backend):
    kv, req_to_token, rows = sglang_pool([10], 64, max_context_len=128, pool_rows=2, seed=0)
    backend = make_backend(model_runner(req_to_token, kv))
    with pytest.raises(NotImplementedError, match="speculative-draft-attention-backend"):
        backend.init_forward_metadata(batch("draft_extend", [10], rows))


def engine_split(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q [tokens, HEADS * 576] as DeepSeek's absorbed path hands it to a backend on its FORWARD_ABSORB_CORE list
    (testing.split_query: a transposed bmm output and a view into the q_b_proj output)."""
    return split_query(q.view(q.shape[0], HEADS, ops.HEAD_DIM))


@pytest.mark.parametrize("mode,q_len,kv_dtype", [("decode", 1, BF16), ("verify", 3, BF16), ("decode", 1, FP8)])
def test_the_absorbed_paths_split_query_and_key_give_what_the_joined_ones_give(make_backend, mode, q_len, kv_dtype):
    """The new token (written through set_mla_kv_buffer) and the query in two parts, nothing concatenated: the same
    output as the joined call, and the token stored as set_kv_buffer would have stored it."""
    cached = [1, 65, 200]
    seq_lens = [n - (q_len if mode == "verify" else 0) for n in cached]
    outs, stored = [], []
    for split in (False, True):
        kv, req_to_token, rows = sglang_pool(cached, 64, max_context_len=512, pool_rows=4, seed=7)
        backend = make_backend(model_runner(req_to_token, kv, num_draft_tokens=q_len if mode == "verify" else None,
                                            kv_cache_dtype=kv_dtype))
        fb = batch(mode, seq_lens, rows)
        last_slots = torch.stack([req_to_token[row, n - 1] for row, n in zip(rows.tolist(), cached)]).long()
        fb.out_cache_loc = last_slots
        backend.init_forward_metadata(fb)
        q = torch.randn(len(cached) * q_len, HEADS * ops.HEAD_DIM, generator=torch.Generator().manual_seed(1)).bfloat16()
        new_k = torch.randn(len(cached), 1, ops.HEAD_DIM, generator=torch.Generator().manual_seed(2)).bfloat16()
        forward = backend.forward_decode if mode == "decode" else backend.forward_extend
        if split:
            latent, rope = engine_split(q)
            k_nope = new_k[..., :512]
            out = forward(latent, k_nope, k_nope, LAYER, fb, q_rope=rope, k_rope=new_k[..., 512:])
        else:
            out = forward(q, new_k, new_k[..., :512], LAYER, fb)
        outs.append(out)
        stored.append(backend.token_to_kv_pool.kv[last_slots].float())
    assert outs[1].shape == (len(cached) * q_len, HEADS * 512)
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    assert torch.equal(stored[1], stored[0])


def test_a_prefill_given_the_rope_columns_apart_hands_the_parent_them_joined(make_backend, monkeypatch):
    kv, req_to_token, rows = sglang_pool([10], 64, max_context_len=128, pool_rows=2, seed=0)
    backend = make_backend(model_runner(req_to_token, kv))
    seen = {}
    monkeypatch.setattr(flashmla_backend.FlashMLABackend, "forward_extend",
                        lambda self, q, k, v, layer, fb, save_kv_cache=True: seen.update(q=q, k=k, v=v) or "parent")
    q = torch.randn(5, HEADS * ops.HEAD_DIM).bfloat16()
    k = torch.randn(5, 1, ops.HEAD_DIM).bfloat16()
    latent, rope = engine_split(q)
    out = backend.forward_extend(latent, k[..., :512], k[..., :512], LAYER, batch("extend", [10], rows),
                                 q_rope=rope, k_rope=k[..., 512:])
    assert out == "parent"
    assert torch.equal(seen["q"], q.view(5, HEADS, ops.HEAD_DIM))
    assert torch.equal(seen["k"], k) and torch.equal(seen["v"], k[..., :512])
