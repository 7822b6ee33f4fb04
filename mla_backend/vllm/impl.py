"""forward_mqa: the decode half of vLLM's MLA layer, on mla_backend's kernel.

vLLM's MLAAttention has already absorbed W_UK into the query (q_nope · W_UK_T, 512 latent columns) and applies
W_UV to what this returns; prefill stays on vLLM's own MLA prefill backend. This file only reshapes vLLM's
tensors into `mla_decode_with_kvcache`'s contract, which checks them (all but the values of vLLM's block
table and seq lens, whose check would cost a host sync in every layer).

With `--kv-cache-dtype fp8` / `fp8_e4m3`, vLLM writes the cache with its concat_and_cache_mla, dividing by the
layer's `_k_scale` (a float32 device tensor), and views it as float8_e4m3fn before forward_mqa (0.26 and 0.33).
The query stays in the model's bf16/fp16 (`supports_quant_query_input` False: vLLM does not quantize it) and
`_k_scale` goes to the kernel as descale_k, read on the device, so CUDA graphs replay with its current value.
"""
from __future__ import annotations

import torch
from vllm.config import get_current_vllm_config_or_none
from vllm.model_executor.layers.attention.mla_attention import MLACommonImpl
from vllm.v1.attention.backend import AttentionType
from vllm.v1.attention.backends.utils import reshape_attn_output_for_spec_decode, reshape_query_for_spec_decode

from mla_backend import ops
from mla_backend.engine_limits import is_fp8_kv_cache, refusal, unsupported_reasons
from mla_backend.vllm.metadata import MLABackendMetadata


def speculative_q_len(vllm_config) -> int:
    """Query tokens per decode request: 1 + vLLM's speculative tokens (1 without a config or speculation)."""
    speculative = getattr(vllm_config, "speculative_config", None)
    return 1 + (getattr(speculative, "num_speculative_tokens", None) or 0)


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
        # MLACommonImpl says True; with an fp8 cache that would hand us an fp8 query. Ours stays bf16/fp16.
        self.supports_quant_query_input = False
        self.fp8_kv_cache = is_fp8_kv_cache(kv_cache_dtype)
        if self.fp8_kv_cache:  # here num_heads is per GPU: refused while the model is built, at startup
            message = refusal(unsupported_reasons(
                page_flag="--block-size", kv_cache_dtype=kv_cache_dtype, num_q_heads=num_heads,
                q_len=speculative_q_len(get_current_vllm_config_or_none())))
            if message:
                raise ValueError(message)

    def forward_mqa(self, q: torch.Tensor | tuple[torch.Tensor, torch.Tensor], kv_c_and_k_pe_cache: torch.Tensor,
                    attn_metadata: MLABackendMetadata, layer) -> tuple[torch.Tensor, torch.Tensor]:
        """q: [T, N, 576] or (q_nope [T, N, 512], q_pe [T, N, 64]), T = num_decodes * q_len; the cache is
        [num_blocks, 64, 576] (any block stride), float8_e4m3fn with --kv-cache-dtype fp8 (layer._k_scale is then
        its descale_k). Returns (out [T, N, 512], lse fp32 [T, N], natural log).
        The kernel reads q_nope and q_pe where they are: no concatenation per layer."""
        q, q_rope = q if isinstance(q, tuple) else (q, None)
        q = reshape_query_for_spec_decode(q, attn_metadata.num_decodes)
        if q_rope is not None:
            q_rope = reshape_query_for_spec_decode(q_rope, attn_metadata.num_decodes)
        descale_k = None
        if self.fp8_kv_cache:
            if kv_c_and_k_pe_cache.dtype == torch.uint8:  # vLLM allocates uint8 and views it as fp8 before us
                kv_c_and_k_pe_cache = kv_c_and_k_pe_cache.view(ops.FP8_KV_DTYPE)
            descale_k = layer._k_scale.reshape(1)  # a view of the device scale: no copy, no sync
        decode = attn_metadata.decode
        out, lse = ops.mla_decode_with_kvcache(q, kv_c_and_k_pe_cache, decode.block_table, decode.seq_lens,
                                               self.kv_lora_rank, decode.tile_scheduler_metadata, decode.num_splits,
                                               softmax_scale=self.scale, causal=True, q_rope=q_rope,
                                               descale_k=descale_k, check_values=False)
        # lse is [b, N, q_len]; vLLM's LSE consumers (the DCP combine) index it per token: [b * q_len, N].
        return reshape_attn_output_for_spec_decode(out), lse.transpose(1, 2).reshape(-1, q.shape[2])
