"""fp32 PyTorch reference of paged MLA decode: the ground truth for every test."""
from __future__ import annotations

import math

import torch

from mla_backend.kernel_facts import BLOCK_SIZE, E4M3_MAX, HEAD_DIM_V


def dequantize_kv(k_cache: torch.Tensor, descale_k: torch.Tensor | float) -> torch.Tensor:
    """What an fp8 cache stands for, in fp32: k_cache.float() * descale_k (the per-tensor scale; NaN stays NaN)."""
    scale = torch.as_tensor(descale_k, dtype=torch.float32, device=k_cache.device).reshape(())
    return k_cache.float() * scale


Q_AMAX_RANGE = (1e-30, 1e30)   # the kernel clamps a row's max |value| to this before taking 448 / it


def quantize_query_rows(q: torch.Tensor) -> torch.Tensor:
    """The query [b, s_q, h_q, 576] the fp8-cache kernel multiplies K with (its Q.K^T runs in fp8), in fp32: every
    (token, head) row scaled by 448 / max|row| onto e4m3's range, rounded to e4m3, scaled back (a zero row stays 0)."""
    q = q.float()
    amax = q.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, E4M3_MAX / amax.clamp(*Q_AMAX_RANGE), torch.ones_like(amax))
    return (q * scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float() / scale


def fp8_cache_operands(q: torch.Tensor, k_cache: torch.Tensor,
                       descale_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The query and cache (fp32) the kernels multiply on an fp8 (e4m3) cache: the query quantized per row
    (quantize_query_rows; every fp8 kernel runs Q.K^T in fp8), the cache dequantized."""
    return quantize_query_rows(q), dequantize_kv(k_cache, descale_k)


def gather_kv(k_cache: torch.Tensor, block_table_row: torch.Tensor, seqlen: int) -> torch.Tensor:
    """The first ``seqlen`` tokens of one request as a [seqlen, head_dim] fp32 matrix."""
    pages = k_cache.reshape(k_cache.shape[0], k_cache.shape[1], k_cache.shape[-1])
    num_pages = math.ceil(seqlen / BLOCK_SIZE)
    return pages[block_table_row[:num_pages].long()].reshape(-1, pages.shape[-1])[:seqlen].float()


def mla_decode_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    block_table: torch.Tensor,
    cache_seqlens: torch.Tensor,
    head_dim_v: int = HEAD_DIM_V,
    softmax_scale: float | None = None,
    causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``mla_backend.ops.mla_decode_with_kvcache``, computed in fp32.

    Returns (out fp32 [b, s_q, h_q, head_dim_v], lse fp32 [b, h_q, s_q]); rows that see no key get
    out = 0 and lse = +inf. With causal, query i of s_q sees keys [0, seqlen - (s_q - 1 - i)).
    """
    b, s_q, h_q, d = q.shape
    scale = softmax_scale if softmax_scale is not None else d ** -0.5
    out = torch.zeros(b, s_q, h_q, head_dim_v, dtype=torch.float32, device=q.device)
    lse = torch.full((b, h_q, s_q), math.inf, dtype=torch.float32, device=q.device)
    for i in range(b):
        seqlen = int(cache_seqlens[i])
        if seqlen <= 0:
            continue
        kv = gather_kv(k_cache, block_table[i], seqlen)
        scores = torch.einsum("shd,td->sht", q[i].float(), kv) * scale
        if causal:
            visible = seqlen - (s_q - 1 - torch.arange(s_q, device=q.device))
            masked = torch.arange(seqlen, device=q.device)[None, :] >= visible[:, None]
            scores = scores.masked_fill(masked[:, None, :], -math.inf)
        row_lse = torch.logsumexp(scores, dim=-1)
        has_keys = torch.isfinite(row_lse)
        probs = torch.where(has_keys[..., None], torch.exp(scores - row_lse[..., None]), torch.zeros_like(scores))
        out[i] = torch.einsum("sht,tv->shv", probs, kv[:, :head_dim_v])
        lse[i] = torch.where(has_keys, row_lse, torch.full_like(row_lse, math.inf)).transpose(0, 1)
    return out, lse
