"""What an engine configuration must be for our kernel, in words an engine can print at startup.

Both adapters (vLLM's `supports_combination`, SGLang's backend constructor) ask `unsupported_reasons` so that a
wrong page size, dtype, GPU or model is refused before the first decode step, with the flag that fixes it.
"""
from __future__ import annotations

import math

import torch

from mla_backend import ops
from mla_backend.kernel_facts import BLOCK_SIZE, FP8_MAX_ROWS, HEAD_DIM, MAX_H_Q, MAX_S_Q, not_hopper

# --kv-cache-dtype values the kernel reads. The 16-bit ones are the model's dtype. fp8 is e4m3 with one per-tensor
# scale: vLLM's "fp8" (e4m3 on CUDA) and "fp8_e4m3", SGLang's fp8_e4m3 (which the engine hands over as the torch
# dtype), read with descale_k; engines get it for at most FP8_MAX_ROWS query rows per GPU (fp8_rows_reason).
FP8_KV_CACHE_DTYPE_NAMES = ("fp8", "fp8_e4m3")
KV_CACHE_DTYPE_NAMES = ("auto", "float16", "bfloat16", *FP8_KV_CACHE_DTYPE_NAMES)
_E5M2 = ("fp8_e5m2", torch.float8_e5m2)


def is_fp8_kv_cache(kv_cache_dtype: str | torch.dtype | None) -> bool:
    """Whether an engine's KV-cache dtype (a flag value or a torch dtype) is the fp8 e4m3 cache the kernel reads."""
    return kv_cache_dtype in FP8_KV_CACHE_DTYPE_NAMES or kv_cache_dtype == ops.FP8_KV_DTYPE


def fp8_rows_reason(num_q_heads: int, q_len: int, tp_flag: str, kv_off: str = "--kv-cache-dtype auto") -> str | None:
    """Why an fp8 KV cache cannot serve num_q_heads query heads per GPU at q_len query tokens per request (None
    when it can): s_q * h_q <= FP8_MAX_ROWS. The op takes more rows (the 64-row fp8 kernel), but at 64-128 requests
    decodes them at 0.97-1.02x FlashMLA's fp8 kernel (benchmarks/results/h200_rows_over_32_fp8.md; 1.07-1.14x at
    1-16 requests) and no engine has run it yet, so an engine is refused them for now. tp_flag is the engine's
    tensor-parallel flag (`--tensor-parallel-size`, `--tp-size`), kv_off the flag that gives a bf16/fp16 cache, both
    named in the advice."""
    rows = num_q_heads * q_len
    if rows <= FP8_MAX_ROWS or not 1 <= q_len <= MAX_S_Q:
        return None
    max_heads = FP8_MAX_ROWS // q_len
    spec = f" (speculative decoding with {q_len - 1} draft token{'s' if q_len > 2 else ''})" if q_len > 1 else ""
    fewer_drafts = ", fewer draft tokens" if q_len > 1 else ""
    return (f"with an fp8 KV cache it takes at most {FP8_MAX_ROWS} query rows per GPU (query heads per GPU x query "
            f"tokens per request) for now, got {num_q_heads} heads x {q_len} token{'s' if q_len > 1 else ''} = "
            f"{rows}{spec}: pass a {tp_flag} at least {math.ceil(num_q_heads / max_heads)}x larger ({max_heads} "
            f"query heads per GPU or fewer){fewer_drafts}, or {kv_off} (a bf16/fp16 cache)")


def unsupported_reasons(*, page_flag: str, use_mla: bool = True, use_sparse: bool = False,
                        head_size: int | None = None, dtype: torch.dtype | None = None,
                        kv_cache_dtype: str | torch.dtype | None = None, page_size: int | None = None,
                        capability: tuple[int, int] | None = None, num_q_heads: int | None = None,
                        q_len: int | None = None, tp_flag: str = "--tensor-parallel-size",
                        kv_off: str = "--kv-cache-dtype auto") -> list[str]:
    """Every reason the kernel cannot serve this configuration (empty when it can); None means "not known yet".

    page_flag is the engine's flag for the KV page size (`--block-size`, `--page-size`), named in the advice; tp_flag
    its tensor-parallel flag and kv_off the flag that turns fp8 KV off, named when an fp8 KV cache meets more query
    heads per GPU than the fp8 kernel takes.
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
    if kv_cache_dtype is not None and kv_cache_dtype in _E5M2:
        reasons.append(f"it reads fp8 KV caches in e4m3 only, got kv_cache_dtype={kv_cache_dtype} "
                       "(pass --kv-cache-dtype fp8_e4m3, or auto for the model's bf16/fp16)")
    elif kv_cache_dtype is not None and kv_cache_dtype not in (*KV_CACHE_DTYPE_NAMES, *ops.DTYPES, ops.FP8_KV_DTYPE):
        reasons.append(f"it keeps the KV cache in the model's bf16/fp16 or in fp8 e4m3, got kv_cache_dtype="
                       f"{kv_cache_dtype} (pass --kv-cache-dtype auto or fp8_e4m3)")
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
    elif is_fp8_kv_cache(kv_cache_dtype) and num_q_heads is not None and 1 <= num_q_heads <= MAX_H_Q:
        fp8_rows = fp8_rows_reason(num_q_heads, q_len or 1, tp_flag, kv_off)
        if fp8_rows:
            reasons.append(fp8_rows)
    return reasons


def refusal(reasons: list[str]) -> str | None:
    """The one message an adapter raises or returns for `reasons`, or None when there are none."""
    return f"mla_backend: {'; '.join(reasons)}" if reasons else None
