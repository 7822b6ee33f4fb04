"""vLLM 0.26 on a Hopper GPU, driven below the engine: one VllmConfig parsed from a tiny DeepSeek-V2 checkpoint,
then each MLA backend's own builder and impl on the same paged batch, wrapped the way MLAAttention wraps
forward_mqa (q_nope · W_UK_T before, · W_UV after). Decode-only batches: prefill never reaches forward_mqa, so
the attention layer that vLLM's MLA builder reads from the forward context is a stand-in."""
from __future__ import annotations

import importlib.metadata
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mla_backend.models import tiny_model
from mla_backend.kernel_facts import BLOCK_SIZE, current_gpu_is_hopper

KV_LORA_RANK = tiny_model.CONFIG["kv_lora_rank"]            # 512
QK_ROPE_HEAD_DIM = tiny_model.CONFIG["qk_rope_head_dim"]    # 64
QK_NOPE_HEAD_DIM = tiny_model.CONFIG["qk_nope_head_dim"]    # 128
V_HEAD_DIM = tiny_model.CONFIG["v_head_dim"]                # 128
LAYER = "model.layers.0.self_attn.attn"
MAX_NUM_SEQS = 128
MAX_MODEL_LEN = 16384    # the 8191-token batch and up; the checkpoint's YaRN allows 163840
# The tiny checkpoint's YaRN (DeepSeek-V2/V3's factor 40, mscale_all_dim 0.707): the scale DeepseekV2 hands
# MLAAttention.
_YARN = tiny_model.CONFIG["rope_scaling"]
MSCALE = 0.1 * _YARN["mscale_all_dim"] * math.log(_YARN["factor"]) + 1.0
SCALE = (QK_NOPE_HEAD_DIM + QK_ROPE_HEAD_DIM) ** -0.5 * MSCALE ** 2


def _vllm_series() -> str | None:
    try:
        return ".".join(importlib.metadata.version("vllm").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return None


requires_hopper_and_vllm_026 = pytest.mark.skipif(
    not current_gpu_is_hopper() or _vllm_series() != "0.26",
    reason=f"needs a Hopper GPU and vLLM 0.26.x (here: Hopper {current_gpu_is_hopper()}, vLLM {_vllm_series()})",
)


def vllm_config(checkpoint: Path, num_speculative_tokens: int = 0, full_cudagraphs: bool = False):
    from vllm.config import (CacheConfig, ModelConfig, ParallelConfig, SchedulerConfig, SpeculativeConfig,
                             VllmConfig)
    from vllm.config.compilation import CUDAGraphMode

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = ModelConfig(model=str(checkpoint), dtype="bfloat16", skip_tokenizer_init=True,
                        max_model_len=MAX_MODEL_LEN)
    speculative = None
    if num_speculative_tokens:
        speculative = SpeculativeConfig(method="ngram", num_speculative_tokens=num_speculative_tokens,
                                        prompt_lookup_max=4, prompt_lookup_min=2, target_model_config=model,
                                        target_parallel_config=ParallelConfig())
    config = VllmConfig(model_config=model, cache_config=CacheConfig(block_size=BLOCK_SIZE),
                        speculative_config=speculative,
                        scheduler_config=SchedulerConfig(max_num_seqs=MAX_NUM_SEQS, max_model_len=MAX_MODEL_LEN,
                                                         is_encoder_decoder=False))
    config.compilation_config.cudagraph_mode = CUDAGraphMode.FULL_DECODE_ONLY if full_cudagraphs else CUDAGraphMode.NONE
    config.compilation_config.static_forward_context[LAYER] = SimpleNamespace(
        q_lora_rank=None, kv_lora_rank=KV_LORA_RANK, qk_nope_head_dim=QK_NOPE_HEAD_DIM,
        qk_rope_head_dim=QK_ROPE_HEAD_DIM, v_head_dim=V_HEAD_DIM, prefill_backend=SimpleNamespace(clone=lambda: None))
    return config


def checkpoint_for(heads: int, directory: Path) -> Path:
    """One attention layer (and its dense MLP) with `heads` heads (128 / TP for DeepSeek-V3's 128 heads at tensor
    parallel TP)."""
    return tiny_model.generate(directory, num_layers=1, num_heads=heads)


def backend_class(name: str):
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    from mla_backend.vllm import plugin

    plugin.register()
    return AttentionBackendEnum[name].get_class()


@dataclass
class Backend:
    name: str
    builder: object
    impl: object

    def supports_q_len(self, q_len: int) -> bool:
        return q_len <= self.builder.reorder_batch_threshold


def make_backend(name: str, config, heads: int) -> Backend:
    from vllm.config import set_current_vllm_config
    from vllm.v1.kv_cache_interface import MLAAttentionSpec

    cls = backend_class(name)
    spec = MLAAttentionSpec(block_size=BLOCK_SIZE, num_kv_heads=1, head_size=KV_LORA_RANK + QK_ROPE_HEAD_DIM,
                            dtype=torch.bfloat16)
    with set_current_vllm_config(config):
        builder = cls.get_builder_cls()(spec, [LAYER], config, torch.device("cuda:0"))
        impl = cls.get_impl_cls()(
            num_heads=heads, head_size=KV_LORA_RANK + QK_ROPE_HEAD_DIM, scale=SCALE, num_kv_heads=1,
            alibi_slopes=None, sliding_window=None, kv_cache_dtype="auto", logits_soft_cap=None, attn_type="decoder",
            kv_sharing_target_layer_name=None, q_lora_rank=None, kv_lora_rank=KV_LORA_RANK,
            qk_nope_head_dim=QK_NOPE_HEAD_DIM, qk_rope_head_dim=QK_ROPE_HEAD_DIM,
            qk_head_dim=QK_NOPE_HEAD_DIM + QK_ROPE_HEAD_DIM, v_head_dim=V_HEAD_DIM, kv_b_proj=None)
    return Backend(name, builder, impl)


@dataclass
class PagedBatch:
    """One decode step: q_len new tokens per request, the KV cache already holding all seq_len tokens."""
    seq_lens: torch.Tensor       # int32 [b], cuda
    q_len: int
    block_table: torch.Tensor    # int32 [b, max_blocks], cuda; block 0 is vLLM's null block, never used
    kv_cache: torch.Tensor       # bf16 [num_blocks, 64, 576], cuda
    q: torch.Tensor              # fp32 [b * q_len, heads, 192]
    w_uk_t: torch.Tensor         # fp32 [heads, 128, 512]
    w_uv: torch.Tensor           # fp32 [heads, 512, 128]

    def common_metadata(self):
        from vllm.v1.attention.backend import CommonAttentionMetadata

        b = self.seq_lens.shape[0]
        query_start_loc = torch.arange(b + 1, dtype=torch.int32) * self.q_len
        return CommonAttentionMetadata(
            query_start_loc=query_start_loc.cuda(), query_start_loc_cpu=query_start_loc,
            seq_lens=self.seq_lens, num_reqs=b, num_actual_tokens=b * self.q_len, max_query_len=self.q_len,
            max_seq_len=int(self.seq_lens.max()), block_table_tensor=self.block_table,
            slot_mapping=torch.zeros(b * self.q_len, dtype=torch.int64, device="cuda"),
            seq_lens_cpu_upper_bound=self.seq_lens.cpu())


def paged_batch(seq_lens: list[int], q_len: int, heads: int, seed: int = 0, num_blocks: int | None = None,
                max_blocks: int | None = None) -> PagedBatch:
    g = torch.Generator(device="cuda").manual_seed(seed)
    pages = [math.ceil(s / BLOCK_SIZE) for s in seq_lens]
    num_blocks = num_blocks or sum(pages) + 4
    max_blocks = max_blocks or max(pages) + 1
    perm = (torch.randperm(num_blocks - 1, generator=g, device="cuda") + 1).to(torch.int32)
    block_table = torch.zeros(len(seq_lens), max_blocks, dtype=torch.int32, device="cuda")
    start = 0
    for i, n in enumerate(pages):
        block_table[i, :n] = perm[start:start + n]
        start += n
    kv_cache = (torch.randn(num_blocks, BLOCK_SIZE, KV_LORA_RANK + QK_ROPE_HEAD_DIM, generator=g, device="cuda")
                ).to(torch.bfloat16)
    q = torch.randn(len(seq_lens) * q_len, heads, QK_NOPE_HEAD_DIM + QK_ROPE_HEAD_DIM, generator=g, device="cuda")
    kv_b = torch.randn(KV_LORA_RANK, heads, QK_NOPE_HEAD_DIM + V_HEAD_DIM, generator=g, device="cuda") / math.sqrt(
        KV_LORA_RANK)
    w_uk, w_uv = kv_b.split([QK_NOPE_HEAD_DIM, V_HEAD_DIM], dim=-1)
    return PagedBatch(torch.tensor(seq_lens, dtype=torch.int32, device="cuda"), q_len, block_table, kv_cache, q,
                      w_uk.permute(1, 2, 0).contiguous(), w_uv.transpose(0, 1).contiguous())


def absorbed_q(batch: PagedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(q_nope · W_UK_T [T, N, 512], q_pe [T, N, 64]) in bf16, as MLAAttention.forward_impl hands them over."""
    q_nope, q_pe = batch.q.split([QK_NOPE_HEAD_DIM, QK_ROPE_HEAD_DIM], dim=-1)
    ql_nope = torch.bmm(q_nope.transpose(0, 1), batch.w_uk_t).transpose(0, 1)
    return ql_nope.bfloat16(), q_pe.bfloat16()


def layer_stub():
    ones = torch.ones(1, dtype=torch.float32, device="cuda")
    return SimpleNamespace(_k_scale=ones, _q_scale=ones, _v_scale=ones, _k_scale_float=1.0, _q_scale_float=1.0)


def run_mla_decode(backend: Backend, batch: PagedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """MLAAttention's decode path: returns (latent out [T, N, 512], model-space out [T, N, 128]), both fp32."""
    meta = backend.builder.build(0, batch.common_metadata())
    latent, _ = backend.impl.forward_mqa(absorbed_q(batch), batch.kv_cache, meta, layer_stub())
    latent = latent.float()
    return latent, torch.bmm(latent.transpose(0, 1), batch.w_uv).transpose(0, 1)


def reference_latent(batch: PagedBatch) -> torch.Tensor:
    """mla_backend's fp32 reference on the same bf16 inputs, as [T, N, 512]."""
    from mla_backend.reference import mla_decode_reference

    q = torch.cat(absorbed_q(batch), dim=-1)
    b = batch.seq_lens.shape[0]
    q = q.view(b, batch.q_len, q.shape[1], q.shape[2])
    out, _ = mla_decode_reference(q, batch.kv_cache, batch.block_table, batch.seq_lens, KV_LORA_RANK, SCALE,
                                  causal=True)
    return out.reshape(b * batch.q_len, out.shape[2], KV_LORA_RANK)
