"""Random paged-MLA decode batches: the tests' inputs and the benchmarks' (one generator for both).

    make_batch(b, s_q, h_q, seqlens, causal=True, device="cuda", seed=0)                   # the tests' poisoned batch
    make_batch(b, s_q, h_q, seqlens, std=1.0, extra_blocks=0, poison=False, causal=True)   # the benchmarks'
    make_batch(b, s_q, h_q, seqlens, kv_dtype=torch.float8_e4m3fn)                        # an fp8 cache + descale_k
    latent, rope = split_query(batch.q)              # q's two parts laid out as engines hand them over

Pages are randomly permuted. Poisoned (the default, shaped like the worst a caller may send): unused pages and the
tail of each request's last page hold NaN and unused block_table entries an index far outside the cache, so a
kernel that reads one key too many or follows one table entry too far fails loudly. Unpoisoned, the cache is as an
engine leaves it: finite values everywhere, unused table entries 0. An fp8 cache is the same keys quantized with
one per-tensor scale (quantize_kv_fp8); its poisoned slots hold e4m3's NaN (0x7f).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mla_backend.kernel_facts import BLOCK_SIZE, E4M3_MAX, HEAD_DIM, HEAD_DIM_V

UNUSED_TABLE_ENTRY = 2147480000   # any read through it would fault
FP8_E4M3_NAN = 0x7F               # float8_e4m3fn NaN (0xFF with the sign bit)


@dataclass
class DecodeBatch:
    q: torch.Tensor              # [b, s_q, h_q, 576]
    k_cache: torch.Tensor        # [num_blocks, 64, 1, 576]
    block_table: torch.Tensor    # int32 [b, max_blocks]
    cache_seqlens: torch.Tensor  # int32 [b]
    softmax_scale: float
    causal: bool
    descale_k: torch.Tensor | None = None   # float32 [1] with an fp8 k_cache: K = descale_k * k_cache


def quantize_kv_fp8(k_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A cache as vLLM keeps it with --kv-cache-dtype fp8: float8_e4m3fn and one float32 [1] scale, amax / 448 over
    the finite values (what a calibrated k_scale gives). NaN slots become e4m3's NaN, 0x7f."""
    values = k_cache.float()
    nan = values.isnan()
    amax = values.nan_to_num(0.0).abs().amax().clamp(min=torch.finfo(torch.float32).tiny)
    descale = (amax / E4M3_MAX).reshape(1)
    quantized = (values.nan_to_num(0.0) / descale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    quantized.view(torch.uint8)[nan] = FP8_E4M3_NAN
    return quantized, descale


def draw_seqlens(b: int, seqlen: int | str, s_q: int, generator: torch.Generator) -> list[int]:
    """Fixed lengths, or 'varlen': N(s, s/2) clipped to [s_q, 2s] like FlashMLA's tests."""
    if seqlen == "varlen":
        mean = 1024
        lens = torch.normal(float(mean), mean / 2, (b,), generator=generator)
        return [int(min(max(x, s_q), 2 * mean)) for x in lens.tolist()]
    return [int(seqlen)] * b


def make_batch(b: int, s_q: int, h_q: int, seqlens: list[int], dtype=torch.bfloat16, causal: bool = False,
               device="cuda", seed: int = 0, extra_blocks: int = 3, std: float = 0.1,
               poison: bool = True, kv_dtype: torch.dtype | None = None) -> DecodeBatch:
    """A batch on ``device`` with ``extra_blocks`` pages no request uses; q and K ~ N(0, std) clamped to +-10 std
    (FlashMLA's tests use std 0.1; std 1 gives the peaked softmax of real activations). softmax_scale is
    DeepSeek's qk_head_dim**-0.5 (192), what vLLM passes. kv_dtype torch.float8_e4m3fn quantizes the cache
    (quantize_kv_fp8) and sets descale_k; by default the cache has q's dtype."""
    g = torch.Generator(device=device).manual_seed(seed)
    pages_per_req = [math.ceil(s / BLOCK_SIZE) for s in seqlens]
    max_blocks = max(max(pages_per_req), 1) + 1
    num_blocks = max(sum(pages_per_req) + extra_blocks, 1)
    perm = torch.randperm(num_blocks, generator=g, device=device).to(torch.int32)
    unused_entry = UNUSED_TABLE_ENTRY if poison else 0
    block_table = torch.full((b, max_blocks), unused_entry, dtype=torch.int32, device=device)
    starts = [0]
    for pages in pages_per_req:
        starts.append(starts[-1] + pages)
    page_slot = torch.arange(max_blocks, device=device)[None, :]
    in_use = page_slot < torch.tensor(pages_per_req, device=device)[:, None]
    flat_index = torch.tensor(starts[:-1], device=device)[:, None] + page_slot
    block_table[in_use] = perm[flat_index[in_use]]

    keys = torch.randn(num_blocks, BLOCK_SIZE, 1, HEAD_DIM, generator=g, device=device) * std
    keys = keys.clamp(-10 * std, 10 * std)
    lens = torch.tensor(seqlens, device=device)
    if poison:
        token = torch.arange(BLOCK_SIZE, device=device)
        valid = torch.zeros(num_blocks, BLOCK_SIZE, dtype=torch.bool, device=device)
        used = block_table[in_use].long()
        page_start = (page_slot.expand(b, -1)[in_use]) * BLOCK_SIZE
        owner_len = lens[:, None].expand(-1, max_blocks)[in_use]
        valid[used] = (page_start[:, None] + token[None, :]) < owner_len[:, None]
        keys[~valid] = float("nan")
    q = (torch.randn(b, s_q, h_q, HEAD_DIM, generator=g, device=device) * std).clamp(-10 * std, 10 * std)
    descale_k = None
    if kv_dtype == torch.float8_e4m3fn:
        keys, descale_k = quantize_kv_fp8(keys)
    elif kv_dtype not in (None, dtype):
        raise ValueError(f"kv_dtype: expected None, {dtype} or torch.float8_e4m3fn, got {kv_dtype}")
    return DecodeBatch(q.to(dtype), keys.to(dtype) if descale_k is None else keys, block_table,
                       lens.to(torch.int32), softmax_scale=192 ** -0.5, causal=causal, descale_k=descale_k)


def split_query(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q [..., h_q, 576] as its latent and RoPE parts, laid out as vLLM and SGLang hand them to a backend: the 512
    latent columns a head-major bmm output viewed token-major (heads the slowest dimension in memory), the 64 RoPE
    columns a view into the wider q projection (its last 64 of 192 columns). The same values as q."""
    latent = q[..., :HEAD_DIM_V].movedim(-2, 0).contiguous().movedim(0, -2)
    projection = torch.randn(*q.shape[:-1], 192, dtype=q.dtype, device=q.device)
    projection[..., 128:] = q[..., HEAD_DIM_V:]
    return latent, projection[..., 128:]
