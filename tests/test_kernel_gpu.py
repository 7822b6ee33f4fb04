"""The compiled kernel against the fp32 reference, on a Hopper GPU (skipped elsewhere)."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import requires_hopper
from mla_backend.testing import draw_seqlens, make_batch, split_query

pytestmark = [pytest.mark.gpu, requires_hopper]


def run_kernel(batch):
    from mla_backend import ops

    b, s_q, h_q, _ = batch.q.shape
    meta, splits = ops.get_mla_metadata(batch.cache_seqlens, s_q * h_q, 1, is_fp8_kvcache=batch.descale_k is not None)
    poison_allocator()
    return ops.mla_decode_with_kvcache(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens, 512, meta,
                                       splits, softmax_scale=batch.softmax_scale, causal=batch.causal,
                                       descale_k=batch.descale_k)


def run_reference(batch):
    """The fp32 reference; an fp8 batch's on the dequantized cache (k_cache.float() * descale_k)."""
    from mla_backend.reference import dequantize_kv, mla_decode_reference

    k_cache = batch.k_cache if batch.descale_k is None else dequantize_kv(batch.k_cache, batch.descale_k)
    return mla_decode_reference(batch.q, k_cache, batch.block_table, batch.cache_seqlens, 512,
                                batch.softmax_scale, batch.causal)


def poison_allocator(num_bytes: int = 1 << 28) -> None:
    """Leaves NaN in the caching allocator's free blocks, so an output element the kernel never writes shows."""
    torch.empty(num_bytes // 4, dtype=torch.float32, device="cuda").fill_(float("nan"))


def assert_matches(out, lse, ref_out, ref_lse, lse_rel_tol=1e-4):
    out = out.float()
    assert not out.isnan().any(), "NaN in out"
    assert torch.equal(torch.isinf(lse), torch.isinf(ref_lse)), "lse is +inf at other rows than the reference"
    empty = torch.isinf(ref_lse).permute(0, 2, 1)   # [b, s_q, h_q]
    assert (out[empty] == 0).all(), "rows without keys must be exactly 0"
    max_abs = (out - ref_out).abs().max().item()
    cos = torch.nn.functional.cosine_similarity(out.flatten().double(), ref_out.flatten().double(), dim=0).item()
    finite = torch.isfinite(ref_lse)
    lse_rel = ((lse[finite] - ref_lse[finite]).abs() / ref_lse[finite].abs().clamp(min=1.0)).max().item() \
        if finite.any() else 0.0
    assert max_abs <= 1e-2, f"out max abs diff {max_abs}"
    if ref_out.abs().max() > 0:
        assert cos >= 1 - 1e-5, f"out cosine {cos}"
    assert lse_rel <= lse_rel_tol, f"lse rel diff {lse_rel}"


GRID = list(itertools.product([1, 2, 6, 64], [1, 2, 4], [1, 3, 16, 32, 64, 128],
                              [1, 20, 63, 64, 65, 140, 4096, "varlen"], [False, True]))


@pytest.mark.parametrize("b,s_q,h_q,seqlen,causal", GRID)
def test_bf16_matches_fp32_reference(b, s_q, h_q, seqlen, causal):
    if b == 64 and seqlen == 4096 and h_q > 32:
        pytest.skip("covered at b=6; keeps the grid within minutes")
    g = torch.Generator().manual_seed(hash((b, s_q, h_q, str(seqlen), causal)) % 2**31)
    batch = make_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), causal=causal, seed=b * 7 + h_q)
    assert_matches(*run_kernel(batch), *run_reference(batch))


@pytest.mark.parametrize("b,s_q,h_q,seqlen,causal", [
    (2, 1, 16, 140, False), (6, 2, 128, "varlen", True), (64, 4, 16, 65, True), (128, 1, 64, 1000, False),
])
def test_fp16_matches_fp32_reference(b, s_q, h_q, seqlen, causal):
    g = torch.Generator().manual_seed(1)
    batch = make_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), dtype=torch.float16, causal=causal)
    assert_matches(*run_kernel(batch), *run_reference(batch))


# s_q * h_q of 17-31: a 32- or 64-row tile partly padding (with s_q > 1 a query's heads are not a multiple of 8).
PARTIAL_ROWS = [(1, 17), (1, 24), (2, 9), (4, 5), (1, 31)]


@pytest.mark.parametrize("b,seqlen,causal", [(2, 140, False), (6, "varlen", True), (64, 65, True)])
@pytest.mark.parametrize("s_q,h_q", PARTIAL_ROWS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_17_to_31_query_rows_match_fp32_reference(dtype, s_q, h_q, b, seqlen, causal):
    g = torch.Generator().manual_seed(hash((b, s_q, h_q, str(seqlen), causal)) % 2**31)
    batch = make_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), dtype=dtype, causal=causal, seed=b + h_q)
    assert_matches(*run_kernel(batch), *run_reference(batch))


@pytest.mark.parametrize("b,s_q,h_q,seqlen", [
    (1, 1, 16, 32768), (4, 1, 16, 4096), (3, 2, 16, "varlen"), (2, 1, 32, 5000), (6, 1, 64, 3000),
    (2, 2, 128, 4100), (1, 1, 128, 32768),
])
def test_unit_variance_inputs_match_fp32_reference(b, s_q, h_q, seqlen):
    # std-1 q and K: scores spread over several units, so the running max moves and rescales matter.
    g = torch.Generator().manual_seed(b + s_q + h_q)
    batch = make_batch(b, s_q, h_q, draw_seqlens(b, seqlen, s_q, g), causal=True, seed=5, std=1.0)
    out, lse = run_kernel(batch)
    ref_out, ref_lse = run_reference(batch)
    assert not out.isnan().any(), "NaN in out"
    rel = ((out.float() - ref_out).norm() / ref_out.norm()).item()
    assert rel <= 1e-2, f"out relative error {rel}"
    finite = torch.isfinite(ref_lse)
    assert torch.equal(finite, torch.isfinite(lse))
    assert ((lse[finite] - ref_lse[finite]).abs() / ref_lse[finite].abs().clamp(min=1.0)).max().item() <= 1e-4


def batch_with_empty_requests(s_q, h_q, **kw):
    """128 varlen requests, every 7th of length 0."""
    seqlens = draw_seqlens(128, "varlen", s_q, torch.Generator().manual_seed(2))
    for i in range(0, 128, 7):
        seqlens[i] = 0
    return make_batch(128, s_q, h_q, seqlens, causal=True, **kw)


@pytest.mark.parametrize("h_q,s_q", [(16, 1), (24, 1), (128, 2)])
def test_zero_length_requests_write_zeros_and_inf_lse(h_q, s_q):
    batch = batch_with_empty_requests(s_q, h_q)
    out, lse = run_kernel(batch)
    assert torch.isinf(lse[::7]).all() and (out[::7] == 0).all()
    assert_matches(out, lse, *run_reference(batch))


def test_all_zero_lengths():
    batch = make_batch(4, 1, 16, [0, 0, 0, 0])
    out, lse = run_kernel(batch)
    assert (out == 0).all() and torch.isinf(lse).all() and (lse > 0).all()


def test_causal_rows_without_keys():
    # seqlen 1 with s_q 4: the first three queries see no key at all.
    batch = make_batch(3, 4, 16, [1, 2, 3], causal=True)
    assert_matches(*run_kernel(batch), *run_reference(batch))


def test_layer_interleaved_kv_cache_strides():
    batch = make_batch(5, 2, 32, [70, 1, 300, 64, 129], causal=True)
    layers = torch.full((batch.k_cache.shape[0], 3, 64, 576), float("nan"), dtype=batch.k_cache.dtype, device="cuda")
    layers[:, 1] = batch.k_cache[:, :, 0]
    batch.k_cache = layers[:, 1]          # stride(0) = 3 * 64 * 576
    assert_matches(*run_kernel(batch), *run_reference(batch))


def test_strided_q_from_concatenated_nope_and_rope():
    batch = make_batch(4, 1, 16, [100, 200, 1, 64])
    wide = torch.zeros(4, 1, 16, 640, dtype=batch.q.dtype, device="cuda")
    wide[..., :576] = batch.q
    batch.q = wide[..., :576]
    assert_matches(*run_kernel(batch), *run_reference(batch))


@pytest.mark.parametrize("s_q,h_q", [(1, 16), (2, 16), (1, 32), (1, 128), (2, 128)])
def test_rope_columns_apart_give_the_same_bits_as_one_query(s_q, h_q):
    from mla_backend import ops

    batch = make_batch(5, s_q, h_q, [70, 0, 300, 64, 1029], causal=True)
    latent, rope = split_query(batch.q)   # as vLLM holds them
    meta, splits = ops.get_mla_metadata(batch.cache_seqlens, s_q * h_q, 1)
    args = (batch.k_cache, batch.block_table, batch.cache_seqlens, 512, meta, splits, batch.softmax_scale, True)
    whole = ops.mla_decode_with_kvcache(batch.q, *args)
    split = ops.mla_decode_with_kvcache(latent, *args, q_rope=rope)
    assert torch.equal(split[0], whole[0]) and torch.equal(split[1], whole[1])


@pytest.mark.parametrize("b", [1, 5, 64, 128, 132, 1000, 4096])
@pytest.mark.parametrize("rows", [1, 16, 64, 128, 256, 2048])
def test_gpu_metadata_equals_python_mirror(b, rows):
    g = torch.Generator().manual_seed(b * rows)
    seqlens = torch.randint(0, 20000, (b,), generator=g, dtype=torch.int32)
    seqlens[torch.rand(b, generator=g) < 0.1] = 0
    _check_gpu_metadata_equals_mirror(seqlens, rows)


@pytest.mark.parametrize("seqlens,rows", [
    ([2048] * 64, 32), ([4096] * 16, 128), ([1024] * 32, 128), ([32768], 16), ([640], 16), ([192, 640], 128),
    ([0, 70000, 0, 65, 3000], 16), ([16384] * 64, 16), ([32768] + [64] * 63, 16),
], ids=["b64_s2048_q2", "b16_h128", "b32_h128", "b1", "b1_short", "b2", "zeros_around_long", "cost_line", "one_long"])
def test_gpu_metadata_equals_python_mirror_in_equal_chunk_mode(seqlens, rows):
    """Batches of b <= parts, where the scheduler weighs equal chunks against the cost line (both outcomes)."""
    _check_gpu_metadata_equals_mirror(torch.tensor(seqlens, dtype=torch.int32), rows)


def _check_gpu_metadata_equals_mirror(seqlens, rows):
    from mla_backend import ops, tile_scheduler

    meta, splits = ops.get_mla_metadata(seqlens.cuda(), rows, 1)
    parts = tile_scheduler.num_sm_parts(rows, torch.cuda.get_device_properties(0).multi_processor_count)
    want_meta, want_splits = tile_scheduler.tile_scheduler(seqlens, parts, tile_scheduler.split_overhead_for(rows))
    assert torch.equal(meta.cpu(), want_meta)
    assert torch.equal(splits.cpu(), want_splits)


@pytest.mark.parametrize("s_q,h_q", [(1, 16), (2, 16), (2, 128)])
def test_cuda_graph_replay_with_new_seqlens_matches_eager(s_q, h_q):
    from mla_backend import ops
    from mla_backend.testing import UNUSED_TABLE_ENTRY

    b, max_len = 32, 2048
    g = torch.Generator().manual_seed(3)
    batches = [make_batch(b, s_q, h_q, [int(x) for x in torch.randint(0, max_len, (b,), generator=g)], causal=True,
                          seed=i) for i in range(3)]
    static = make_batch(b, s_q, h_q, [max_len] * b, causal=True, seed=9)

    def step():
        meta, splits = ops.get_mla_metadata(static.cache_seqlens, s_q * h_q, 1)
        return ops.mla_decode_with_kvcache(static.q, static.k_cache, static.block_table, static.cache_seqlens, 512,
                                           meta, splits, softmax_scale=static.softmax_scale, causal=True)

    step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        graph_out, graph_lse = step()
    for batch in batches:
        static.q.copy_(batch.q)
        static.k_cache.fill_(float("nan"))
        static.k_cache[:batch.k_cache.shape[0]].copy_(batch.k_cache)
        static.block_table.fill_(UNUSED_TABLE_ENTRY)
        static.block_table[:, :batch.block_table.shape[1]].copy_(batch.block_table)
        static.cache_seqlens.copy_(batch.cache_seqlens)
        graph.replay()
        eager_out, eager_lse = step()
        torch.testing.assert_close(graph_out, eager_out, rtol=0, atol=0)
        torch.testing.assert_close(graph_lse, eager_lse, rtol=0, atol=0)
        assert_matches(graph_out, graph_lse, *run_reference(static))


# compute-sanitizer's words when it could not start the child at all (the child printed nothing): the tool failed,
# not the kernel. The nvidia-cuda-sanitizer-api 13.0.85 wheel's copy does that on the H200 box, where the CUDA
# toolkit's (2025.3.1 too) runs the same script.
SANITIZER_DID_NOT_START = "Target application terminated before first instrumented API call"


def find_compute_sanitizer() -> str | None:
    """compute-sanitizer of the CUDA toolkit, on PATH, or from the nvidia-cuda-sanitizer-api wheel (nvidia/cu13/bin),
    in that order."""
    candidates = ["/usr/local/cuda/bin/compute-sanitizer", shutil.which("compute-sanitizer")]
    try:
        import nvidia
        candidates += [os.path.join(path, "cu13", "bin", "compute-sanitizer") for path in nvidia.__path__]
    except ImportError:
        pass
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def assert_memcheck_clean(cases: list[tuple[int, int, int, list[int]]], fp8: bool = False) -> None:
    """Metadata + decode of each (b, s_q, h_q, seqlens) poisoned batch under compute-sanitizer memcheck, in a child
    process; fp8: on an fp8 (e4m3) cache with its descale_k instead of a cache in the query's dtype."""
    sanitizer = find_compute_sanitizer()
    if sanitizer is None:
        pytest.skip("compute-sanitizer not installed (CUDA toolkit, or pip install nvidia-cuda-sanitizer-api)")
    script = (
        "import torch; from mla_backend.testing import make_batch; from mla_backend import ops\n"
        f"for b, s_q, h_q, lens in {cases!r}:\n"
        f"    x = make_batch(b, s_q, h_q, lens, causal=True, kv_dtype=torch.float8_e4m3fn if {fp8} else None)\n"
        f"    m, s = ops.get_mla_metadata(x.cache_seqlens, s_q * h_q, 1, is_fp8_kvcache={fp8})\n"
        "    ops.mla_decode_with_kvcache(x.q, x.k_cache, x.block_table, x.cache_seqlens, 512, m, s, causal=True,\n"
        "                                descale_k=x.descale_k)\n"
        "torch.cuda.synchronize()\n"
    )
    result = subprocess.run([sanitizer, "--tool", "memcheck", "--error-exitcode", "1", sys.executable, "-c", script],
                            capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
                            timeout=600)
    output = result.stdout[-4000:] + result.stderr[-4000:]
    if SANITIZER_DID_NOT_START in result.stdout and "ERROR SUMMARY" not in result.stdout:
        pytest.fail(f"{sanitizer} could not start the child process (no kernel ran, so nothing was checked); use "
                    f"another compute-sanitizer, e.g. the CUDA toolkit's:\n{output}")
    assert result.returncode == 0, output
    assert "ERROR SUMMARY: 0 errors" in result.stdout


def test_compute_sanitizer_memcheck_is_clean():
    # (2, 1, 128, [3000, 0]): a split request with b x rows = 256, the combine's whole-row eight-warp CTAs
    assert_memcheck_clean([(3, 1, 16, [0, 70, 200]), (3, 1, 24, [0, 70, 200]), (2, 2, 128, [65, 1]),
                           (4, 4, 3, [20, 0, 300, 64]), (2, 1, 128, [3000, 0])])
