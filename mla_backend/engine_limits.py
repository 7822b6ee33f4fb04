"""What an engine configuration must be for our kernel, in words an engine can print at startup.

Both adapters (vLLM's `supports_combination`, SGLang's backend constructor) ask `unsupported_reasons` so that a
wrong page size, dtype, GPU or model is refused before the first decode step, with the flag that fixes it.
"""
from __future__ import annotations

import torch

from mla_backend import ops
from mla_backend.kernel_facts import BLOCK_SIZE, HEAD_DIM, MAX_H_Q, MAX_S_Q, not_hopper

KV_CACHE_DTYPE_NAMES = ("auto", "float16", "bfloat16")


def unsupported_reasons(*, page_flag: str, use_mla: bool = True, use_sparse: bool = False,
                        head_size: int | None = None, dtype: torch.dtype | None = None,
                        kv_cache_dtype: str | torch.dtype | None = None, page_size: int | None = None,
                        capability: tuple[int, int] | None = None, num_q_heads: int | None = None,
                        q_len: int | None = None) -> list[str]:
    """Every reason the kernel cannot serve this configuration (empty when it can); None means "not known yet".

    page_flag is the engine's flag for the KV page size (`--block-size`, `--page-size`), named in the advice.
    A page size that is a multiple of 64 is accepted: engines split their pages into the kernel's 64-token ones.
    """
    reasons = []
    if not use_mla:
        reasons.append("it serves MLA models (DeepSeek-V2/V3) only")
    if use_sparse:
        reasons.append("it has no sparse MLA (DeepSeek-V3.2) kernel")
    if head_size is not None and head_size != HEAD_DIM:
        reasons.append(f"it needs head size {HEAD_DIM} (kv_lora_rank 512 + rope 64), got {head_size}")
    if dtype is not None and dtype not in ops.DTYPES:
        reasons.append(f"it runs bfloat16 or float16 models, got {dtype} (pass --dtype bfloat16)")
    if kv_cache_dtype is not None and kv_cache_dtype not in (*KV_CACHE_DTYPE_NAMES, *ops.DTYPES):
        reasons.append(f"it keeps the KV cache in the model's bf16/fp16, got kv_cache_dtype={kv_cache_dtype}")
    if page_size is not None and page_size % BLOCK_SIZE != 0:
        reasons.append(f"it reads KV pages of {BLOCK_SIZE} tokens, got block size {page_size} "
                       f"(pass {page_flag} {BLOCK_SIZE})")
    if capability is not None and (refusal := not_hopper(capability)) is not None:
        reasons.append(refusal)
    if num_q_heads is not None and not 1 <= num_q_heads <= MAX_H_Q:
        reasons.append(f"it takes 1 to {MAX_H_Q} query heads per GPU, got {num_q_heads}")
    if q_len is not None and not 1 <= q_len <= MAX_S_Q:
        reasons.append(f"it decodes 1 to {MAX_S_Q} query tokens per request, got {q_len} "
                       f"(speculative decoding with {q_len - 1} draft tokens)")
    return reasons


def refusal(reasons: list[str]) -> str | None:
    """The one message an adapter raises or returns for `reasons`, or None when there are none."""
    return f"mla_backend: {'; '.join(reasons)}" if reasons else None
