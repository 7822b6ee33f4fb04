"""forward_mqa: the decode half of vLLM's MLA layer, on mla_backend's kernel.

vLLM's MLAAttention has already absorbed W_UK into the query (q_nope · W_UK_T, 512 latent columns) and applies
W_UV to what this returns; prefill stays on vLLM's own MLA prefill backend. This file only reshapes vLLM's
tensors into `mla_decode_with_kvcache`'s contract, which checks them (all but the values of vLLM's block
table and seq lens, whose check would cost a host sync in every layer).
"""
from __future__ import annotations

import torch
from vllm.model_executor.layers.attention.mla_attention import MLACommonImpl
from vllm.v1.attention.backend import AttentionType
from vllm.v1.attention.backends.utils import reshape_attn_output_for_spec_decode, reshape_query_for_spec_decode

from mla_backend import ops
from mla_backend.vllm.metadata import MLABackendMetadata


class MLABackendImpl(MLACommonImpl[MLABackendMetadata]):
    can_return_lse_for_decode: bool = True
    supports_dcp: bool = False

    def __init__(self, num_heads: int, head_size: int, scale: float, num_kv_heads: int,
                 alibi_slopes: list[float] | None, sliding_window: int | None, kv_cache_dtype: str,
                 logits_soft_cap: float | None, attn_type: str, kv_sharing_target_layer_name: str | None,
                 **mla_args) -> None:
        super().__init__(num_heads, head_size, scale, num_kv_heads, alibi_slopes, sliding_window, kv_cache_dtype,
                         logits_soft_cap, attn_type, kv_sharing_target_layer_name, **mla_args)
        if alibi_slopes is not None or sliding_window is not None or logits_soft_cap is not None:
            raise NotImplementedError("mla_backend does not support alibi_slopes, sliding_window or logits_soft_cap")
        if attn_type != AttentionType.DECODER:
            raise NotImplementedError(f"mla_backend runs decoder self-attention only, not {attn_type}")

    def forward_mqa(self, q: torch.Tensor | tuple[torch.Tensor, torch.Tensor], kv_c_and_k_pe_cache: torch.Tensor,
                    attn_metadata: MLABackendMetadata, layer) -> tuple[torch.Tensor, torch.Tensor]:
        """q: [T, N, 576] or (q_nope [T, N, 512], q_pe [T, N, 64]), T = num_decodes * q_len; the cache is
        [num_blocks, 64, 576] (any block stride). Returns (out [T, N, 512], lse fp32 [T, N], natural log).
        The kernel reads q_nope and q_pe where they are: no concatenation per layer."""
        q, q_rope = q if isinstance(q, tuple) else (q, None)
        q = reshape_query_for_spec_decode(q, attn_metadata.num_decodes)
        if q_rope is not None:
            q_rope = reshape_query_for_spec_decode(q_rope, attn_metadata.num_decodes)
        decode = attn_metadata.decode
        out, lse = ops.mla_decode_with_kvcache(q, kv_c_and_k_pe_cache, decode.block_table, decode.seq_lens,
                                               self.kv_lora_rank, decode.tile_scheduler_metadata, decode.num_splits,
                                               softmax_scale=self.scale, causal=True, q_rope=q_rope,
                                               check_values=False)
        # lse is [b, N, q_len]; vLLM's LSE consumers (the DCP combine) index it per token: [b * q_len, N].
        return reshape_attn_output_for_spec_decode(out), lse.transpose(1, 2).reshape(-1, q.shape[2])
