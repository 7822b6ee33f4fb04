"""The backend's static facts, and the reasons vLLM prints when it refuses a configuration.

vLLM's selector calls `validate_configuration` for a backend named with `--attention-backend CUSTOM`; the base
class there checks each fact below and adds `supports_combination`'s reasons, so a wrong block size, dtype or
GPU stops vLLM at startup with our words, not in a worker at the first decode step.

KV-cache dtypes are FlashMLA's (vLLM's FLASHMLA backend declares the same list): the model's bf16/fp16, and fp8
e4m3 (`--kv-cache-dtype fp8` or `fp8_e4m3`), which vLLM writes with the layer's `_k_scale` and we read with it as
descale_k (impl.py). `fp8_e5m2` and the other quantized caches are refused here; an fp8 cache with more query
heads per GPU than the fp8 kernel takes is refused where the head count is known (the impl, the builder).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from vllm.model_executor.layers.attention.mla_attention import MLACommonBackend

from mla_backend import ops
from mla_backend.engine_limits import KV_CACHE_DTYPE_NAMES, refusal, unsupported_reasons
from mla_backend.kernel_facts import is_hopper
from mla_backend.vllm.impl import MLABackendImpl
from mla_backend.vllm.metadata import MLABackendMetadataBuilder

KV_CACHE_DTYPES = list(KV_CACHE_DTYPE_NAMES)


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
        return is_hopper(capability)

    @classmethod
    def supports_combination(cls, head_size, dtype, kv_cache_dtype, block_size, use_mla, has_sink, use_sparse,
                             use_mm_prefix, device_capability) -> str | None:
        capability = None if device_capability is None else (device_capability.major, device_capability.minor)
        return refusal(unsupported_reasons(page_flag="--block-size", use_mla=use_mla, use_sparse=use_sparse,
                                           head_size=head_size, dtype=dtype, kv_cache_dtype=kv_cache_dtype,
                                           page_size=block_size, capability=capability))
