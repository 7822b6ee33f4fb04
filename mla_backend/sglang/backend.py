"""SGLang's FlashMLA backend with decode and target-verify (MTP/EAGLE) on mla_backend's kernel.

Prefill (EXTEND) stays SGLang's own MLA prefill, inherited through FlashMLABackend from the FlashInfer MLA backend,
and DeepSeek's attention dispatch is FlashMLA's (plugin.py registers its handler for our name): the one thing
that changes is the kernel that reads the paged latent cache. SGLang has already absorbed W_UK into q (512 latent
+ 64 RoPE columns) and applies W_UV to what forward_decode returns.

Per step, `init_forward_metadata*` turns SGLang's req_to_token rows into our block table (pages.py), its seq lens
into the kernel's key counts, and computes our tile-scheduler plan on the GPU (no host sync), once for every
layer; under CUDA graphs all of it goes into buffers allocated once by `init_cuda_graph_state`, because SGLang
prepares each replay outside the graph (`..._out_graph`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from sglang.srt.layers.attention.flashmla_backend import FlashMLABackend

from mla_backend import ops
from mla_backend.engine_limits import refusal, unsupported_reasons
from mla_backend.plan_buffers import PlanBuffers, copy_into
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
    """Persistent homes of one step's DecodeMetadata, which captured graphs read at fixed addresses."""
    block_table: torch.Tensor                 # int32 [max_bs, num_blocks]
    cache_seqlens: torch.Tensor               # int32 [max_bs]
    plan: PlanBuffers


class MLABackend(FlashMLABackend):
    def __init__(self, model_runner, skip_prefill: bool = False, kv_indptr_buf: torch.Tensor | None = None,
                 kv_last_page_len_buf: torch.Tensor | None = None):
        super().__init__(model_runner, skip_prefill, kv_indptr_buf, kv_last_page_len_buf)
        reasons = unsupported_reasons(
            page_flag="--page-size", head_size=self.kv_cache_dim, dtype=self.q_data_type,
            kv_cache_dtype=self.data_type, page_size=model_runner.page_size,
            capability=torch.cuda.get_device_capability(self.device), num_q_heads=self.num_q_heads,
            q_len=self.num_draft_tokens or None)
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
        logger.info("mla_backend: decode%s on mla_backend's kernel, %d query heads; prefill on SGLang's FlashMLA path",
                    " and target-verify" if self.num_draft_tokens else "", self.num_q_heads)

    # ------------------------------------------------------------------------------------------ metadata

    def init_forward_metadata(self, forward_batch):
        if self._is_decode_like(forward_batch.forward_mode):
            self.forward_metadata = self._decode_metadata(forward_batch, graph=False)
        else:
            super().init_forward_metadata(forward_batch)

    def init_forward_metadata_out_graph(self, forward_batch, in_capture: bool = False):
        if self._is_decode_like(forward_batch.forward_mode):
            self.forward_metadata = self._decode_metadata(forward_batch, graph=self._graph_buffers is not None)
        else:
            super().init_forward_metadata_out_graph(forward_batch, in_capture=in_capture)

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int, block_kv_indices: torch.Tensor | None = None):
        self._graph_buffers = self._allocate_graph_buffers(max_bs)
        # The parent keeps its speculative-decoding state (the verify mask); handing it our table spares its own.
        super().init_cuda_graph_state(max_bs, max_num_tokens, block_kv_indices=self._graph_buffers.block_table)

    def _allocate_graph_buffers(self, max_bs: int) -> GraphBuffers:
        int32 = dict(dtype=torch.int32, device=self.device)
        return GraphBuffers(torch.zeros((max_bs, pages.num_blocks(self.req_to_token)), **int32),
                            torch.zeros(max_bs, **int32),
                            PlanBuffers(self.num_q_heads, (1, self.num_draft_tokens or 1), max_bs, self.device))

    def _is_decode_like(self, forward_mode) -> bool:
        if forward_mode.is_draft_extend_v2():
            raise NotImplementedError(DRAFT_ADVICE)
        return forward_mode.is_decode_or_idle() or forward_mode.is_target_verify()

    def _cache_seqlens(self, forward_batch) -> torch.Tensor:
        """int32 [bs]: keys each request sees; a verify step's draft tokens are already in the cache."""
        seq_lens = forward_batch.seq_lens[: forward_batch.batch_size]
        if forward_batch.forward_mode.is_target_verify():
            seq_lens = seq_lens + self.num_draft_tokens
        return seq_lens.to(torch.int32)

    def _decode_metadata(self, forward_batch, graph: bool) -> DecodeMetadata | None:
        """Once per step, for every layer: block table, key counts and plan (in the graph buffers if `graph`)."""
        bs = forward_batch.batch_size
        if bs == 0:  # an idle step (data-parallel attention): nothing to attend
            return None
        q_len = self.num_draft_tokens if forward_batch.forward_mode.is_target_verify() else 1
        cache_seqlens = self._cache_seqlens(forward_batch)
        plan, num_splits = ops.get_mla_metadata(cache_seqlens, q_len * self.num_q_heads, 1)
        req_pool_indices = forward_batch.req_pool_indices[:bs]
        if not graph:
            return DecodeMetadata(pages.block_table(self.req_to_token, req_pool_indices), cache_seqlens, plan,
                                  num_splits)
        buffers = self._graph_buffers
        return DecodeMetadata(pages.block_table(self.req_to_token, req_pool_indices, out=buffers.block_table[:bs]),
                              copy_into(buffers.cache_seqlens, cache_seqlens), *buffers.plan.hold(plan, num_splits))

    # ------------------------------------------------------------------------------------------- forward

    def forward_decode(self, q, k, v, layer, forward_batch, save_kv_cache: bool = True):
        return self._decode(q, k, v, layer, forward_batch, save_kv_cache)

    def forward_extend(self, q, k, v, layer, forward_batch, save_kv_cache: bool = True):
        if self._is_decode_like(forward_batch.forward_mode):
            return self._decode(q, k, v, layer, forward_batch, save_kv_cache)
        return super().forward_extend(q, k, v, layer, forward_batch, save_kv_cache)

    def _decode(self, q, k, v, layer, forward_batch, save_kv_cache: bool) -> torch.Tensor:
        """Returns [bs * q_len, heads * 512]: attention over the latent cache, before W_UV."""
        if k is not None and save_kv_cache:
            loc = _write_loc(forward_batch) if _write_loc is not None else forward_batch.out_cache_loc
            self.token_to_kv_pool.set_kv_buffer(layer, loc, k, v)
        bs, heads = forward_batch.batch_size, layer.tp_q_head_num
        if bs == 0:
            return q.new_empty(0, heads * layer.v_head_dim)
        metadata = self.forward_metadata
        k_cache = self.token_to_kv_pool.get_key_buffer(layer.layer_id)
        out, _ = ops.mla_decode_with_kvcache(
            q.view(bs, -1, heads, layer.head_dim), k_cache.view(-1, ops.BLOCK_SIZE, 1, self.kv_cache_dim),
            metadata.block_table, metadata.cache_seqlens, self.kv_lora_rank,
            metadata.tile_scheduler_metadata, metadata.num_splits, softmax_scale=layer.scaling, causal=True,
            check_values=False)
        return out.view(-1, heads * layer.v_head_dim)

