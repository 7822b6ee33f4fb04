"""Real vLLM objects on the CPU for the adapter tests: a VllmConfig parsed from a tiny DeepSeek-V2 checkpoint's
config, our builder and impl made the way vLLM makes them, and decode batches in vLLM's CommonAttentionMetadata.

The checkpoints come from mla_backend.models.tiny_model (tiny_model.generate with num_layers/num_heads).
The one stand-in is the attention layer that vLLM's MLA builder reads from the forward context (its MLA dims
and its prefill backend, which decode-only batches never use). On CPU tensors our ops run the fp32 reference.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import torch
from vllm.config import (CacheConfig, DeviceConfig, ModelConfig, ParallelConfig, SchedulerConfig, SpeculativeConfig,
                         VllmConfig, set_current_vllm_config)
from vllm.config.compilation import CUDAGraphMode
from vllm.v1.attention.backend import CommonAttentionMetadata
from vllm.v1.kv_cache_interface import MLAAttentionSpec

from mla_backend.vllm.backend import MLABackend

LAYER = "model.layers.0.self_attn.attn"
MAX_NUM_SEQS = 16
KV_LORA_RANK, ROPE, NOPE, V = 512, 64, 128, 128
DTYPE = torch.bfloat16


def vllm_config(checkpoint: Path, num_speculative_tokens: int = 0, full_cudagraphs: bool = True,
                cache_dtype: str = "auto") -> VllmConfig:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = ModelConfig(model=str(checkpoint), dtype="bfloat16", skip_tokenizer_init=True, max_model_len=4096)
    speculative = None
    if num_speculative_tokens:
        speculative = SpeculativeConfig(method="ngram", num_speculative_tokens=num_speculative_tokens,
                                        prompt_lookup_max=4, prompt_lookup_min=2, target_model_config=model,
                                        target_parallel_config=ParallelConfig())
    config = VllmConfig(model_config=model, device_config=DeviceConfig(device="cpu"),
                        cache_config=CacheConfig(block_size=64, cache_dtype=cache_dtype),
                        speculative_config=speculative,
                        scheduler_config=SchedulerConfig(max_num_seqs=MAX_NUM_SEQS, max_model_len=4096,
                                                         is_encoder_decoder=False))
    # vLLM turns CUDA graphs off on a platform without them; the builder only reads the mode.
    config.compilation_config.cudagraph_mode = CUDAGraphMode.FULL_DECODE_ONLY if full_cudagraphs else CUDAGraphMode.NONE
    config.compilation_config.static_forward_context[LAYER] = SimpleNamespace(
        q_lora_rank=None, kv_lora_rank=KV_LORA_RANK, qk_nope_head_dim=NOPE, qk_rope_head_dim=ROPE, v_head_dim=V,
        prefill_backend=SimpleNamespace(clone=lambda: None))
    return config


def make_builder(config: VllmConfig):
    """The spec as vLLM's MLA layer makes it: an fp8 cache is allocated as uint8 and named by cache_dtype_str."""
    cache_dtype = config.cache_config.cache_dtype
    spec = MLAAttentionSpec(block_size=64, num_kv_heads=1, head_size=KV_LORA_RANK + ROPE,
                            dtype=torch.uint8 if cache_dtype.startswith("fp8") else DTYPE, cache_dtype_str=cache_dtype)
    with set_current_vllm_config(config):
        return MLABackend.get_builder_cls()(spec, [LAYER], config, torch.device("cpu"))


def make_impl(config: VllmConfig, num_heads: int, scale: float):
    """num_heads per GPU, as vLLM's MLA layer passes them; the layer's kv_cache_dtype is the config's."""
    with set_current_vllm_config(config):
        return MLABackend.get_impl_cls()(
            num_heads=num_heads, head_size=KV_LORA_RANK + ROPE, scale=scale, num_kv_heads=1, alibi_slopes=None,
            sliding_window=None, kv_cache_dtype=config.cache_config.cache_dtype, logits_soft_cap=None,
            attn_type="decoder", kv_sharing_target_layer_name=None, q_lora_rank=None, kv_lora_rank=KV_LORA_RANK,
            qk_nope_head_dim=NOPE, qk_rope_head_dim=ROPE, qk_head_dim=NOPE + ROPE, v_head_dim=V, kv_b_proj=None)


def decode_batch(seq_lens: list[int], q_len: int, block_table: torch.Tensor) -> CommonAttentionMetadata:
    """vLLM's view of a decode-only step: each request adds q_len tokens, its seq len counts them."""
    b = len(seq_lens)
    query_start_loc = torch.arange(b + 1, dtype=torch.int32) * q_len
    return CommonAttentionMetadata(
        query_start_loc=query_start_loc, query_start_loc_cpu=query_start_loc.clone(),
        seq_lens=torch.tensor(seq_lens, dtype=torch.int32), num_reqs=b, num_actual_tokens=b * q_len,
        max_query_len=q_len, max_seq_len=max(seq_lens), block_table_tensor=block_table,
        slot_mapping=torch.zeros(b * q_len, dtype=torch.int64))
