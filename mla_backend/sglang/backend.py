"""SGLang's FlashMLA backend with decode and target-verify (MTP/EAGLE) on mla_backend's kernel.

Prefill (EXTEND) stays SGLang's own MLA prefill, inherited through FlashMLABackend from the FlashInfer MLA backend,
and DeepSeek's attention dispatch is FlashMLA's (plugin.py registers its handler for our name): the one thing
that changes is the kernel that reads the paged latent cache. SGLang has already absorbed W_UK into q (512 latent
+ 64 RoPE columns) and applies W_UV to what forward_decode returns. DeepSeek's absorbed path hands those columns
apart (q, q_rope; k, k_rope), as it does to FlashInfer (plugin.py lists our name with it): decode passes both parts
of q to the kernel and writes k with the pool's set_mla_kv_buffer; a prefill that gets them joins them for the
parent.

A step's metadata, shared by every layer: SGLang's req_to_token rows turned into our block table (pages.py), its
seq lens into the kernel's key counts, and our tile-scheduler plan, all computed on the GPU with static shapes and
no host sync. Where it is computed (SGLang 0.5.17 and 0.5.23 drive backends through the same three methods,
base_attn_backend.py's `init_forward_metadata` / `_out_graph` / `_in_graph`):
  - a decode step under CUDA graphs: in `init_forward_metadata_in_graph`, which SGLang's decode graph runner calls
    inside the captured forward, so every replay recomputes it on the GPU from the graph's own input buffers into
    the persistent buffers of `init_cuda_graph_state`. What runs on the host before each replay
    (`init_forward_metadata_out_graph`) is one dict look-up: no tensor op, no kernel launch;
  - a target-verify step under CUDA graphs: in `init_forward_metadata_out_graph` (before each replay, into the
    same buffers), as FlashMLA does, because SGLang's prefill graph runner can also run verify steps and calls
    only that method;
  - without CUDA graphs (eager decode: batches above the captured sizes, --disable-cuda-graph): in
    `init_forward_metadata`, into fresh tensors.

fp8 KV (`--kv-cache-dtype fp8_e4m3`): SGLang's MLA token pool (MLATokenToKVPool, 0.5.17 and 0.5.23) stores the
latents as `k.to(float8_e4m3fn)` in uint8 storage and hands them back viewed as float8_e4m3fn; neither its
set_kv_buffer / set_mla_kv_buffer (our decode writes, and the FlashInfer MLA prefill we inherit) nor DeepSeek's
FlashMLA dispatch divides by the layer's k_scale on the way in. The cache therefore holds K itself and its
descale_k is 1: a float32 [1] tensor of ones made once on the device (a CUDA graph reads it in place). Passing
layer.k_scale instead, as FlashMLA's fp8 path does, would scale every key by it whenever a checkpoint carries a
k_scale other than 1. The query stays in the model's bf16/fp16 (FlashMLA's path quantizes it with k_scale; ours
does not). At most kernel_facts.FP8_MAX_ROWS query rows per GPU (heads x draft tokens + 1) for now: more is refused at
construction, naming --tp-size and --kv-cache-dtype auto.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from sglang.srt.layers.attention.flashmla_backend import FlashMLABackend

from mla_backend import ops
from mla_backend.engine_limits import is_fp8_kv_cache, refusal, unsupported_reasons
from mla_backend.plan_buffers import PlanBuffers
from mla_backend.sglang import pages

try:  # newer SGLang (0.5.23) hands set_kv_buffer a KVWriteLoc built from the batch; 0.5.17 the bare out_cache_loc
    from sglang.srt.mem_cache.memory_pool import KVWriteLoc
    _write_loc = KVWriteLoc.for_batch
except (ImportError, AttributeError):
    _write_loc = None

logger = logging.getLogger(__name__)
DRAFT_ADVICE = ("mla_backend runs the target model's decode and verify steps; give the draft model a built-in "
                "backend with --speculative-draft-attention-backend flashmla")


@dataclass
class DecodeMetadata:
    block_table: torch.Tensor                 # int32 [bs, num_blocks]
    cache_seqlens: torch.Tensor               # int32 [bs]: keys each request sees (draft tokens included)
    tile_scheduler_metadata: torch.Tensor     # int32 [num_sm_parts, 8]
    num_splits: torch.Tensor                  # int32 [bs + 1]


@dataclass
class GraphBuffers:
    """Persistent homes of a step's DecodeMetadata, which captured graphs read (and write) at fixed addresses."""
    block_table: torch.Tensor                 # int32 [max_bs, num_blocks]
    cache_seqlens: torch.Tensor               # int32 [max_bs]
    plan: PlanBuffers
    views: dict = field(default_factory=dict)  # (bs, q_len) -> DecodeMetadata over the leading rows

    def view(self, bs: int, q_len: int) -> DecodeMetadata:
        """The metadata of a step of bs requests as slices of the buffers: built once per shape, then looked up."""
        metadata = self.views.get((bs, q_len))
        if metadata is None:
            metadata = self.views[(bs, q_len)] = DecodeMetadata(
                self.block_table[:bs], self.cache_seqlens[:bs],
                self.plan.tile_scheduler_metadata[: self.plan.parts(q_len, bs)], self.plan.num_splits[: bs + 1])
        return metadata


class MLABackend(FlashMLABackend):
    def __init__(self, model_runner, skip_prefill: bool = False, kv_indptr_buf: torch.Tensor | None = None,
                 kv_last_page_len_buf: torch.Tensor | None = None):
        super().__init__(model_runner, skip_prefill, kv_indptr_buf, kv_last_page_len_buf)
        # With --kv-cache-dtype auto, SGLang takes fp8 from a checkpoint whose kv_cache_quant_algo is FP8: bf16 is
        # then the flag that turns it off.
        kv_flag = getattr(getattr(model_runner, "server_args", None), "kv_cache_dtype", None)
        reasons = unsupported_reasons(
            page_flag="--page-size", head_size=self.kv_cache_dim, dtype=self.q_data_type,
            kv_cache_dtype=self.data_type, page_size=model_runner.page_size,
            capability=torch.cuda.get_device_capability(self.device), num_q_heads=self.num_q_heads,
            q_len=self.num_draft_tokens or None, tp_flag="--tp-size",
            kv_off="--kv-cache-dtype bf16" if kv_flag == "auto" else "--kv-cache-dtype auto")
        if getattr(model_runner, "kv_cache_dtype_str", None) == "mxfp8":
            reasons.append("it reads the fp8_e4m3 KV cache, not mxfp8 (pass --kv-cache-dtype fp8_e4m3)")
        if self.data_type in ops.DTYPES and self.data_type != self.q_data_type:
            reasons.append(f"it reads the KV cache in the model's dtype ({self.q_data_type}), got {self.data_type}")
        if self.dcp_world_size > 1:
            reasons.append("it does not support decode context parallelism (DCP) yet")
        if getattr(getattr(self, "kv_index_translator", None), "reads_are_translated", False):
            reasons.append("it reads req_to_token slots directly, not through the unified-memory KV pool")
        if model_runner.is_draft_worker:
            reasons.append(DRAFT_ADVICE)
        message = refusal(reasons)
        if message:
            raise ValueError(message)
        self._graph_buffers: GraphBuffers | None = None
        # The fp8 pool holds K unscaled (module docstring): descale_k is one, made once, where graphs can read it.
        self._descale_k = (torch.ones(1, dtype=torch.float32, device=self.device)
                           if is_fp8_kv_cache(self.data_type) else None)
        logger.info("mla_backend: decode%s on mla_backend's kernel, %d query heads, %s KV cache; prefill on SGLang's "
                    "FlashMLA path", " and target-verify" if self.num_draft_tokens else "", self.num_q_heads,
                    "fp8 (e4m3)" if self._descale_k is not None else str(self.data_type).replace("torch.", ""))

    # ------------------------------------------------------------------------------------------ metadata

    def init_forward_metadata(self, forward_batch):
        """Eager steps (no CUDA graph): the metadata into fresh tensors."""
        if self._is_decode_like(forward_batch.forward_mode):
            self.forward_metadata = self._eager_metadata(forward_batch)
        else:
            super().init_forward_metadata(forward_batch)

    def init_forward_metadata_out_graph(self, forward_batch, in_capture: bool = False):
        """Before a graph's capture and before each replay, on the host. A decode step launches nothing here: its
        graph recomputes the metadata (init_forward_metadata_in_graph); this only points forward_metadata at the
        buffers, for the capture and for an eager layer between graph segments (breakable graphs)."""
        mode = forward_batch.forward_mode
        if not self._is_decode_like(mode):
            super().init_forward_metadata_out_graph(forward_batch, in_capture=in_capture)
        elif self._graph_buffers is None:  # no CUDA graph state: SGLang's eager contract (out, then in)
            self.forward_metadata = self._eager_metadata(forward_batch)
        elif forward_batch.batch_size == 0:
            self.forward_metadata = None
        elif mode.is_target_verify():
            # Also reached from SGLang's prefill graph runner, which never calls init_forward_metadata_in_graph.
            self.forward_metadata = self._fill_graph_buffers(forward_batch)
        else:
            self.forward_metadata = self._graph_buffers.view(forward_batch.batch_size, 1)

    def init_forward_metadata_in_graph(self, forward_batch):
        """Inside the captured forward (recorded, then replayed with the graph): a decode step's metadata, from the
        graph's input buffers (req_pool_indices, seq_lens) into the persistent buffers."""
        mode = forward_batch.forward_mode
        if not self._is_decode_like(mode):
            super().init_forward_metadata_in_graph(forward_batch)
        elif self._graph_buffers is not None and not mode.is_target_verify() and forward_batch.batch_size > 0:
            self.forward_metadata = self._fill_graph_buffers(forward_batch)

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int, block_kv_indices: torch.Tensor | None = None):
        self._graph_buffers = self._allocate_graph_buffers(max_bs)
        # The parent keeps its speculative-decoding state (the verify mask); handing it our table spares its own.
        super().init_cuda_graph_state(max_bs, max_num_tokens, block_kv_indices=self._graph_buffers.block_table)

    def _allocate_graph_buffers(self, max_bs: int) -> GraphBuffers:
        int32 = dict(dtype=torch.int32, device=self.device)
        q_lens = (1, self.num_draft_tokens or 1)
        plan = PlanBuffers(self.num_q_heads, q_lens, max_bs, self.device, self._fp8_cache)
        return GraphBuffers(torch.zeros((max_bs, pages.num_blocks(self.req_to_token)), **int32),
                            torch.zeros(max_bs, **int32), plan)

    @property
    def _fp8_cache(self) -> bool:
        return self._descale_k is not None

    def _is_decode_like(self, forward_mode) -> bool:
        if forward_mode.is_draft_extend_v2():
            raise NotImplementedError(DRAFT_ADVICE)
        return forward_mode.is_decode_or_idle() or forward_mode.is_target_verify()

    def _q_len(self, forward_batch) -> int:
        return self.num_draft_tokens if forward_batch.forward_mode.is_target_verify() else 1

    def _write_cache_seqlens(self, forward_batch, out: torch.Tensor) -> torch.Tensor:
        """The keys each request sees, into int32 `out` [bs] (no host sync); returns `out`."""
        out.copy_(forward_batch.seq_lens[:forward_batch.batch_size])  # int64 -> int32 in the copy
        if forward_batch.forward_mode.is_target_verify():  # a verify step's draft tokens are already in the cache
            out.add_(self.num_draft_tokens)
        return out

    def _eager_metadata(self, forward_batch) -> DecodeMetadata | None:
        """The step's metadata in fresh tensors (eager steps: nothing captured reads them)."""
        bs = forward_batch.batch_size
        if bs == 0:  # an idle step (data-parallel attention): nothing to attend
            return None
        cache_seqlens = self._write_cache_seqlens(forward_batch, torch.empty(bs, dtype=torch.int32,
                                                                              device=forward_batch.seq_lens.device))
        plan, num_splits = ops.get_mla_metadata(cache_seqlens, self._q_len(forward_batch) * self.num_q_heads, 1,
                                                self._fp8_cache)
        block_table = pages.block_table(self.req_to_token, forward_batch.req_pool_indices[:bs])
        return DecodeMetadata(block_table, cache_seqlens, plan, num_splits)

    def _fill_graph_buffers(self, forward_batch) -> DecodeMetadata:
        """The step's metadata written into the persistent buffers, with static shapes and no host sync (graph
        capturable): the block table, the key counts, then the plan from those key counts. Returns the views."""
        bs, q_len, buffers = forward_batch.batch_size, self._q_len(forward_batch), self._graph_buffers
        metadata = buffers.view(bs, q_len)
        pages.block_table(self.req_to_token, forward_batch.req_pool_indices[:bs], out=metadata.block_table)
        self._write_cache_seqlens(forward_batch, metadata.cache_seqlens)
        buffers.plan.hold(*ops.get_mla_metadata(metadata.cache_seqlens, q_len * self.num_q_heads, 1,
                                                self._fp8_cache))
        return metadata

    # ------------------------------------------------------------------------------------------- forward

    def forward_decode(self, q, k, v, layer, forward_batch, save_kv_cache: bool = True, q_rope=None, k_rope=None):
        return self._decode(q, k, v, layer, forward_batch, save_kv_cache, q_rope, k_rope)

    def forward_extend(self, q, k, v, layer, forward_batch, save_kv_cache: bool = True, q_rope=None, k_rope=None):
        if self._is_decode_like(forward_batch.forward_mode):
            return self._decode(q, k, v, layer, forward_batch, save_kv_cache, q_rope, k_rope)
        if q_rope is not None:  # FlashMLA's prefill (our parent's) takes the RoPE columns joined
            q = torch.cat([q.view(-1, layer.tp_q_head_num, layer.v_head_dim),
                           q_rope.view(-1, layer.tp_q_head_num, ops.ROPE_DIM)], dim=-1)
            if k is not None:
                k = torch.cat([k.view(-1, layer.tp_k_head_num, layer.v_head_dim),
                               k_rope.view(-1, layer.tp_k_head_num, ops.ROPE_DIM)], dim=-1)
                v = v.view(-1, layer.tp_v_head_num, layer.v_head_dim)
        return super().forward_extend(q, k, v, layer, forward_batch, save_kv_cache)

    def _decode(self, q, k, v, layer, forward_batch, save_kv_cache: bool, q_rope=None, k_rope=None) -> torch.Tensor:
        """Returns [bs * q_len, heads * 512]: attention over the latent cache, before W_UV. With q_rope / k_rope
        (DeepSeek's absorbed path for a backend in its FORWARD_ABSORB_CORE list, plugin.py) q and k are the 512
        latent columns only: the new token is written by the pool's set_mla_kv_buffer and the kernel reads q's
        two parts where they are, so nothing is concatenated."""
        if k is not None and save_kv_cache:
            loc = _write_loc(forward_batch) if _write_loc is not None else forward_batch.out_cache_loc
            if k_rope is not None:
                self.token_to_kv_pool.set_mla_kv_buffer(layer, loc, k, k_rope)
            else:
                self.token_to_kv_pool.set_kv_buffer(layer, loc, k, v)
        bs, heads = forward_batch.batch_size, layer.tp_q_head_num
        if bs == 0:
            return q.new_empty(0, heads * layer.v_head_dim)
        metadata = self.forward_metadata
        k_cache = self.token_to_kv_pool.get_key_buffer(layer.layer_id)
        if k_cache.dtype == torch.uint8 and self._descale_k is not None:  # the pool's storage dtype, if not viewed
            k_cache = k_cache.view(ops.FP8_KV_DTYPE)
        if q_rope is not None:
            q, q_rope = q.view(bs, -1, heads, layer.v_head_dim), q_rope.view(bs, -1, heads, ops.ROPE_DIM)
        else:
            q = q.view(bs, -1, heads, layer.head_dim)
        out, _ = ops.mla_decode_with_kvcache(
            q, k_cache.view(-1, ops.BLOCK_SIZE, 1, self.kv_cache_dim),
            metadata.block_table, metadata.cache_seqlens, self.kv_lora_rank,
            metadata.tile_scheduler_metadata, metadata.num_splits, softmax_scale=layer.scaling, causal=True,
            q_rope=q_rope, descale_k=self._descale_k, check_values=False)
        return out.view(-1, heads * layer.v_head_dim)
