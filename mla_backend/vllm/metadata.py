"""Per-step decode metadata: vLLM's block tables and seq lens, plus our tile-scheduler plan for them.

The plan is computed on the GPU by `mla_backend.ops.get_mla_metadata` (no host sync) once per step and shared by
every layer. Under full CUDA graphs it is copied into buffers allocated once, because a captured graph replays
with the addresses it saw at capture: vLLM rebuilds the metadata before each replay, outside the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from vllm.model_executor.layers.attention.mla_attention import (
    MLACommonDecodeMetadata,
    MLACommonMetadata,
    MLACommonMetadataBuilder,
    QueryLenSupport,
)
from vllm.v1.attention.backend import AttentionCGSupport

from mla_backend import ops
from mla_backend.engine_limits import fp8_rows_reason, is_fp8_kv_cache, refusal
from mla_backend.plan_buffers import PlanBuffers


@dataclass
class MLABackendDecodeMetadata(MLACommonDecodeMetadata):
    tile_scheduler_metadata: torch.Tensor   # int32 [num_sm_parts, 8]
    num_splits: torch.Tensor                # int32 [num_decodes + 1]


@dataclass
class MLABackendMetadata(MLACommonMetadata[MLABackendDecodeMetadata]):
    pass


class MLABackendMetadataBuilder(MLACommonMetadataBuilder[MLABackendMetadata]):
    _cudagraph_support: ClassVar[AttentionCGSupport] = AttentionCGSupport.UNIFORM_BATCH
    query_len_support: ClassVar[QueryLenSupport] = QueryLenSupport.UNIFORM
    # vLLM raises this to 1 + num_speculative_tokens; the kernel takes up to ops.MAX_S_Q query tokens.
    reorder_batch_threshold: int = 1

    def __init__(self, kv_cache_spec, layer_names: list[str], vllm_config, device: torch.device):
        super().__init__(kv_cache_spec, layer_names, vllm_config, device, MLABackendMetadata)
        # vLLM 0.33 refuses DCP through supports_dcp; 0.26 does not ask, so refuse it here for both.
        if self.dcp_world_size > 1:
            raise NotImplementedError("mla_backend does not support decode context parallelism (DCP) yet")
        if self.reorder_batch_threshold > ops.MAX_S_Q:
            raise ValueError(f"mla_backend decodes at most {ops.MAX_S_Q} query tokens per request; "
                             f"{self.reorder_batch_threshold - 1} speculative tokens are too many")
        # The impl checked the heads against the speculative tokens; this is the decode length vLLM settled on.
        cache_dtype = getattr(kv_cache_spec, "cache_dtype_str", None) or vllm_config.cache_config.cache_dtype
        self.fp8_cache = is_fp8_kv_cache(cache_dtype)
        fp8_rows = self.fp8_cache and fp8_rows_reason(self.num_heads, self.reorder_batch_threshold,
                                                      "--tensor-parallel-size")
        if fp8_rows:
            raise ValueError(refusal([fp8_rows]))
        self.plan_buffers = None
        if self.compilation_config.cudagraph_mode.has_full_cudagraphs():
            # q_len 1 gives the most SM parts of any uniform query length.
            self.plan_buffers = PlanBuffers(self.num_heads, (1,), vllm_config.scheduler_config.max_num_seqs, device,
                                            self.fp8_cache)

    def _build_decode(self, block_table_tensor: torch.Tensor, seq_lens_device: torch.Tensor, max_seq_len: int,
                      query_start_loc_cpu: torch.Tensor, query_start_loc_device: torch.Tensor,
                      num_decode_tokens: int, dcp_tot_seq_lens_device: torch.Tensor | None,
                      max_query_len: int | None = None) -> MLABackendDecodeMetadata:
        # max_query_len (passed by 0.33 only) is capped by the reorder threshold, not the decodes' own length,
        # so the uniform length is read from the decodes' query_start_loc, which lives on the host.
        q_len = int((query_start_loc_cpu[1:] - query_start_loc_cpu[:-1]).max())
        tile_scheduler_metadata, num_splits = ops.get_mla_metadata(seq_lens_device, q_len * self.num_heads, 1,
                                                                   self.fp8_cache)
        if self.plan_buffers is not None:
            tile_scheduler_metadata, num_splits = self.plan_buffers.hold(tile_scheduler_metadata, num_splits)
        return MLABackendDecodeMetadata(
            block_table=block_table_tensor,
            seq_lens=seq_lens_device,
            dcp_tot_seq_lens=dcp_tot_seq_lens_device,
            tile_scheduler_metadata=tile_scheduler_metadata,
            num_splits=num_splits,
        )

