"""Our vLLM backend against vLLM 0.26's own MLA backends on an H100: the same random paged batch (permuted
blocks, random W_UK/W_UV absorption, DeepSeek's YaRN softmax scale) through our builder + forward_mqa and through
FLASHMLA's and TRITON_MLA's, for decode and spec decode (q_len 2, 4), at DeepSeek-V3's 128 heads split over
TP 1, 2, 4, 8. Also: vLLM's selector takes `CUSTOM` on Hopper and refuses a bad block size with our reason, and a
full CUDA graph of forward_mqa replays correctly after the builder rewrites its plan for new seq lens.

    python -m pytest -q integration_tests -m gpu      (needs vLLM 0.26.x, see README "vLLM")
"""
from __future__ import annotations

import pytest
import torch

from vllm_gpu import (BLOCK_SIZE, absorbed_q, checkpoint_for, make_backend, paged_batch, reference_latent,
                      requires_hopper_and_vllm_026, run_mla_decode, vllm_config)

pytestmark = [pytest.mark.gpu, requires_hopper_and_vllm_026]

HEADS = [128 // tp for tp in (1, 2, 4, 8)]
BATCHES = {
    "single_long": [8191],
    "small_mixed": [1, 63, 64, 65, 200, 1000],
    "large_uniform": [1024] * 64,
    "large_varlen": [17 + (i * 997) % 4000 for i in range(96)],
}
TOL = dict(rtol=1e-2, atol=1e-2)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return {h: checkpoint_for(h, tmp_path_factory.mktemp(f"tiny_h{h}")) for h in HEADS}


@pytest.mark.parametrize("heads", HEADS)
@pytest.mark.parametrize("q_len", [1, 2, 4])
@pytest.mark.parametrize("batch_name", list(BATCHES))
def test_custom_matches_flashmla_and_triton_mla(checkpoints, heads, q_len, batch_name):
    config = vllm_config(checkpoints[heads], num_speculative_tokens=q_len - 1)
    seq_lens = [max(s, q_len) for s in BATCHES[batch_name]]    # a request's seq len counts its q_len new tokens
    batch = paged_batch(seq_lens, q_len, heads, seed=heads * 10 + q_len)
    ours_latent, ours = run_mla_decode(make_backend("CUSTOM", config, heads), batch)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours_latent, reference_latent(batch), **TOL)
    compared = []
    for name in ("FLASHMLA", "TRITON_MLA"):
        peer = make_backend(name, config, heads)
        if not peer.supports_q_len(q_len):       # 0.26's TRITON_MLA decodes one query token per request
            continue
        _, theirs = run_mla_decode(peer, batch)
        torch.testing.assert_close(ours, theirs, **TOL, msg=lambda m, name=name: f"vs {name}: {m}")
        compared.append(name)
    assert "FLASHMLA" in compared


def test_vllm_selector_takes_custom_on_hopper_and_names_a_bad_block_size():
    from vllm.platforms import current_platform
    from vllm.v1.attention.backends.registry import AttentionBackendEnum
    from vllm.v1.attention.selector import AttentionSelectorConfig

    from mla_backend.vllm import plugin

    plugin.register()
    good = AttentionSelectorConfig(head_size=576, dtype=torch.bfloat16, kv_cache_dtype="auto", block_size=BLOCK_SIZE,
                                   use_mla=True)
    path = current_platform.get_attn_backend_cls(AttentionBackendEnum.CUSTOM, attn_selector_config=good)
    assert path == plugin.BACKEND_PATH
    with pytest.raises(ValueError, match=r"pass --block-size 64"):
        current_platform.get_attn_backend_cls(AttentionBackendEnum.CUSTOM,
                                              attn_selector_config=good._replace(block_size=16))


@pytest.mark.parametrize("q_len", [1, 2])
def test_full_cuda_graph_replays_after_the_builder_rewrites_the_plan(checkpoints, q_len):
    heads = 16
    backend = make_backend("CUSTOM", vllm_config(checkpoints[heads], num_speculative_tokens=q_len - 1,
                                                 full_cudagraphs=True), heads)
    shape = dict(num_blocks=80, max_blocks=65)
    steps = [paged_batch([300, 4000, 1, 64], q_len, heads, seed=1, **shape),
             paged_batch([4096, 5, 700, 129], q_len, heads, seed=2, **shape)]
    # The runner's persistent inputs (seq lens, block table, query, cache), rewritten in place before each replay.
    live = paged_batch([1, 1, 1, 1], q_len, heads, seed=3, **shape)
    q_buf = torch.cat(absorbed_q(live), dim=-1)
    meta = backend.builder.build(0, live.common_metadata())
    for _ in range(2):
        backend.impl.forward_mqa(q_buf, live.kv_cache, meta, None)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out_buf, _ = backend.impl.forward_mqa(q_buf, live.kv_cache, meta, None)
    for step in steps:
        live.seq_lens.copy_(step.seq_lens)
        live.block_table.copy_(step.block_table)
        live.kv_cache.copy_(step.kv_cache)
        q_buf.copy_(torch.cat(absorbed_q(step), dim=-1))
        rebuilt = backend.builder.build(0, live.common_metadata())
        assert rebuilt.decode.tile_scheduler_metadata.data_ptr() == meta.decode.tile_scheduler_metadata.data_ptr()
        assert rebuilt.decode.num_splits.data_ptr() == meta.decode.num_splits.data_ptr()
        graph.replay()
        torch.testing.assert_close(out_buf.float(), reference_latent(step), **TOL)
