"""Weight absorption stays vLLM's and is exact: on a DeepSeek-V2-shaped layer with random weights, the absorbed
decode that vLLM's MLAAttention runs through our backend (q_nope · W_UK_T, our builder and forward_mqa, then
· W_UV) equals plain multi-head attention with the unabsorbed kv_b_proj (per head K = [kv_c · W_UK, k_pe],
V = kv_c · W_UV), with the same softmax scale."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vLLM 0.33.0 in a second venv for these tests)")

from vllm.model_executor.layers.attention import mla_attention

from mla_backend.models import tiny_model
from vllm_cpu import KV_LORA_RANK, NOPE, ROPE, V, decode_batch, make_builder, make_impl, vllm_config

HEADS = 4
# DeepSeek-V2's scale with YaRN: qk_head_dim**-0.5 * mscale**2, mscale = 0.1 * mscale_all_dim * ln(factor) + 1.
SCALE = (NOPE + ROPE) ** -0.5 * (0.1 * 0.707 * math.log(40) + 1) ** 2
CACHE_DTYPE = torch.float16     # the op takes bf16/fp16; fp16 keeps the one rounding (of q and out) small


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_model.generate(tmp_path_factory.mktemp("tiny_dsv2"), num_layers=1, num_heads=HEADS)


def split_like_vllm(kv_b_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_UK_T [N, nope, L], W_UV [N, L, v]) as MLAAttention.process_weights_after_loading stores them."""
    if hasattr(mla_attention, "split_kv_b_proj"):     # vLLM 0.33
        kv_b_proj = SimpleNamespace(weight=kv_b_weight, quant_method=None)
        w_uk, w_uv = mla_attention.split_kv_b_proj(kv_b_proj, torch.float32, KV_LORA_RANK, HEADS, NOPE, V)
    else:                                               # vLLM 0.26 does the same inline
        w_uk, w_uv = kv_b_weight.T.view(KV_LORA_RANK, HEADS, NOPE + V).split([NOPE, V], dim=-1)
    return w_uk.permute(1, 2, 0), w_uv.transpose(0, 1)


def fp16_exact(t: torch.Tensor) -> torch.Tensor:
    """Values the fp16 cache stores exactly, so both paths see the same keys."""
    return t.to(CACHE_DTYPE).float()


def test_absorbed_mqa_through_our_backend_equals_naive_mha(checkpoint):
    g = torch.Generator().manual_seed(0)
    seq_lens, q_len = [1, 70, 130], 2
    b = len(seq_lens)
    kv_b_weight = torch.randn(HEADS * (NOPE + V), KV_LORA_RANK, generator=g) / math.sqrt(KV_LORA_RANK)
    kv_c = [fp16_exact(torch.randn(s, KV_LORA_RANK, generator=g)) for s in seq_lens]
    k_pe = [fp16_exact(torch.randn(s, ROPE, generator=g)) for s in seq_lens]
    q = torch.randn(b * q_len, HEADS, NOPE + ROPE, generator=g)     # the last q_len tokens of each request

    # The paged cache vLLM's concat_and_cache_mla writes: [kv_c | k_pe] per token, pages in random order.
    pages = [math.ceil(s / 64) for s in seq_lens]
    perm = torch.randperm(sum(pages) + 1, generator=g).to(torch.int32)
    cache = torch.full((sum(pages) + 1, 64, KV_LORA_RANK + ROPE), float("nan"), dtype=CACHE_DTYPE)
    block_table = torch.zeros(b, max(pages), dtype=torch.int32)
    start = 0
    for i, s in enumerate(seq_lens):
        block_table[i, :pages[i]] = perm[start:start + pages[i]]
        start += pages[i]
        tokens = torch.cat([kv_c[i], k_pe[i]], dim=-1).to(CACHE_DTYPE)
        for t in range(s):
            cache[block_table[i, t // 64], t % 64] = tokens[t]

    # Absorbed: what MLAAttention.forward_impl does around impl.forward_mqa.
    w_uk_t, w_uv = split_like_vllm(kv_b_weight)
    q_nope, q_pe = q.split([NOPE, ROPE], dim=-1)
    ql_nope = torch.bmm(q_nope.transpose(0, 1), w_uk_t).transpose(0, 1)             # [T, N, 512]
    builder = make_builder(vllm_config(checkpoint, num_speculative_tokens=q_len - 1))
    meta = builder.build(0, decode_batch(seq_lens, q_len, block_table))
    impl = make_impl(vllm_config(checkpoint), HEADS, SCALE)
    latent, _ = impl.forward_mqa((ql_nope.to(CACHE_DTYPE), q_pe.to(CACHE_DTYPE)), cache, meta, None)
    absorbed = torch.bmm(latent.float().transpose(0, 1), w_uv).transpose(0, 1)      # [T, N, v]

    # Naive: decompress K and V per head with the unabsorbed kv_b_proj, then causal MHA, in float64.
    naive = torch.empty(b * q_len, HEADS, V, dtype=torch.float64)
    for i, s in enumerate(seq_lens):
        kv = (kv_c[i].double() @ kv_b_weight.double().T).view(s, HEADS, NOPE + V)
        k = torch.cat([kv[..., :NOPE], k_pe[i].double()[:, None, :].expand(s, HEADS, ROPE)], dim=-1)
        v = kv[..., NOPE:]
        for j in range(q_len):
            token = i * q_len + j
            visible = s - (q_len - 1 - j)           # the query at position visible - 1 sees keys [0, visible)
            scores = torch.einsum("hd,thd->ht", q[token].double(), k[:visible]) * SCALE
            naive[token] = torch.einsum("ht,thv->hv", scores.softmax(-1), v[:visible])

    assert absorbed.shape == (b * q_len, HEADS, V) and torch.isfinite(absorbed).all()
    torch.testing.assert_close(absorbed.double(), naive, rtol=2e-3, atol=2e-3)
    # The tolerance is the fp16 rounding of q and out, far below what a wrong scale or mask would cost.
    assert (absorbed.double() - naive).abs().max() < 0.02 * naive.abs().max()
