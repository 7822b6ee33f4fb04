"""The backend's static facts, and the reasons vLLM prints when it refuses a configuration.

vLLM's selector calls `validate_configuration` for a backend named with `--attention-backend CUSTOM`; the base
class there checks each fact below and adds `supports_combination`'s reasons, so a wrong block size, dtype or
GPU stops vLLM at startup with our words, not in a worker at the first decode step.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from vllm.model_executor.layers.attention.mla_attention import MLACommonBackend

from mla_backend import ops
from mla_backend.vllm.impl import MLABackendImpl
from mla_backend.vllm.metadata import MLABackendMetadataBuilder

KV_CACHE_DTYPES = ["auto", "float16", "bfloat16"]


class MLABackend(MLACommonBackend):
    supported_dtypes: ClassVar[list[torch.dtype]] = list(ops.DTYPES)
    supported_kv_cache_dtypes: ClassVar[list[str]] = KV_CACHE_DTYPES

    @staticmethod
    def get_name() -> str:
        return "CUSTOM"

    @staticmethod
    def get_builder_cls() -> type[MLABackendMetadataBuilder]:
        return MLABackendMetadataBuilder

    @staticmethod
    def get_impl_cls() -> type[MLABackendImpl]:
        return MLABackendImpl

    @staticmethod
    def get_supported_kernel_block_sizes(kv_cache_spec=None) -> list[int]:
        return [ops.BLOCK_SIZE]

    @classmethod
    def get_supported_head_sizes(cls) -> list[int]:
        return [ops.HEAD_DIM]

    @classmethod
    def supports_compute_capability(cls, capability) -> bool:
        return capability.major == 9

    @classmethod
    def supports_combination(cls, head_size, dtype, kv_cache_dtype, block_size, use_mla, has_sink, use_sparse,
                             use_mm_prefix, device_capability) -> str | None:
        reasons = []
        if not use_mla:
            reasons.append("it serves MLA models (DeepSeek-V2/V3) only")
        if use_sparse:
            reasons.append("it has no sparse MLA (DeepSeek-V3.2) kernel")
        if head_size != ops.HEAD_DIM:
            reasons.append(f"it needs head size {ops.HEAD_DIM} (kv_lora_rank 512 + rope 64), got {head_size}")
        if dtype not in ops.DTYPES:
            reasons.append(f"it runs bfloat16 or float16 models, got {dtype} (pass --dtype bfloat16)")
        if kv_cache_dtype is not None and kv_cache_dtype not in KV_CACHE_DTYPES:
            reasons.append(f"it keeps the KV cache in the model's bf16/fp16, got kv_cache_dtype={kv_cache_dtype}")
        if block_size is not None and block_size % ops.BLOCK_SIZE != 0:
            reasons.append(f"it reads KV pages of {ops.BLOCK_SIZE} tokens, got block size {block_size} "
                           f"(pass --block-size {ops.BLOCK_SIZE})")
        if device_capability is not None and device_capability.major != 9:
            reasons.append("its kernel needs a Hopper GPU (compute capability 9.x, sm_90a), this GPU is "
                           f"{device_capability.major}.{device_capability.minor}")
        return f"mla_backend: {'; '.join(reasons)}" if reasons else None
