"""Peer MLA decode implementations, loaded side by side with ours in one process.

`load_peers(path)` returns name -> peer. Each peer's `prepare(batch)` returns a zero-argument callable
that runs one whole decode step the way its engine runs it (its own metadata, kernel and combine) and
returns `(out [b, s_q, h_q, 512], lse [b, h_q, s_q] or None)`; both may be views of the kernel's own
buffers, so the callable can be captured in a CUDA graph unchanged. A peer that cannot run carries the
exception text in `error` and its `prepare` raises `PeerUnavailable`; nothing here crashes the caller.

Every step callable carries `keepalive`: every tensor and object its launches read (inputs, copies of them,
persistent metadata, workspaces, planner wrappers). A CUDA graph holds raw pointers only, so whoever keeps a
captured graph must keep its step too (benchmarks/bench_decode.py does): a buffer freed after capture goes
back to the allocator, the next allocation takes it, and the replays read garbage (no work done, or an
illegal address).

Peers (vLLM 0.26.0 code paths, files from `benchmarks/peers_bundle.py`):
A step is one layer's decode as the engine runs it inside a decode step of many layers: what an engine plans
once per step for all layers is done in `prepare` (not timed), for every peer that plans per step:

- `mla_backend`: ours, `mla_backend.ops`: decode + combine; `get_mla_metadata` once in `prepare` (vLLM's
  builder makes it before the graph, SGLang's graph before the first layer; ~3 µs per step in the kernel
  timelines of kernels/PERF_NOTES.md).
- `flashmla`: vLLM's FLASHMLA backend, `flash_mla_with_kvcache` over the wheel's `_flashmla_C` op, with a
  `FlashMLASchedMeta` whose schedule one call in `prepare` filled (vLLM builds one per step; the step's first
  layer fills it, the later layers reuse it).
- `fa3_mla`: vLLM's FLASH_ATTN_MLA backend in full-CUDA-graph mode: FA3's `get_scheduler_metadata(...,
  num_splits=32)` runs outside the graph into a persistent zero-padded int32 buffer of 1 + 4·round_up(b, 4)
  entries (as vLLM's metadata builder does; not timed), then the graphed `flash_attn_varlen_func(q=q_pe,
  k=k_pe, v=kv_c, q_v=q_nope, ...)` with `num_splits` = vLLM's `flash_attn_max_num_splits_for_cuda_graph`
  (32) and no LSE (vLLM's path without DCP). FA3 re-zeroes the tile semaphore inside that buffer at the end
  of each call, so one schedule serves every replay of unchanged seqlens.
- `fa3_mla_default`: the same call with `scheduler_metadata=None, num_splits=0`: FA3 picks its splits and
  runs its scheduler inside the graph (vLLM's path without full CUDA graphs).
- `triton_mla`: vLLM's TRITON_MLA backend, `decode_attention_fwd` (stage 1 + reduce), s_q = 1 only (vLLM
  sends multi-token decode to prefill for this backend).
- `flashinfer_mla`: FlashInfer `BatchMLAPagedAttentionWrapper(backend="fa3")`, from the bundle's `site/`
  (FlashInfer 0.6.14 with its MLA module compiled ahead of time) or an installed FlashInfer; its `plan()`
  is host work, done once per input set in `prepare` (not timed), the step is `run()`. Its run reads what
  `plan()` wrote into the wrapper's int workspace and the float workspace (split partials), plus
  `kv_indices`: all are in the step's keepalive. The call itself stays in bounds: the kernel reads
  `kv_indices[kv_indptr[i] + t // 64]` only for tokens t < seqlen of request i, and takes the page and row
  strides of the ckv/kpe views of the 576-wide cache (1152-byte rows, the kpe view 1024 bytes in, both
  16-byte aligned); `plan()` checks its workspace sizes and raises when a batch does not fit.
- `flashmla_sglang`: SGLang 0.5.17's `flashmla` backend: the FlashMLA built into sgl-kernel 0.4.5
  (`sgl_kernel.flash_mla`), `get_mla_metadata` once per step in `prepare`, `flash_mla_with_kvcache` per layer.
  Available where SGLang's environment is (the SGLang bundle's site), not the vLLM peer bundle.

With an fp8 (e4m3) KV cache (`bench_decode.py --kv fp8`), the batch also carries the cache as
float8_e4m3fn with its per-tensor `descale_k` (float32 [1]); `k_cache` is then what that cache stands for, in bf16.
The fp8 peers (`load_peers(..., kv="fp8")`, FP8_PEER_NAMES):

- `mla_backend`: ours on the fp8 cache, `mla_decode_with_kvcache(..., descale_k=descale_k)`, bf16 q.
- `mla_backend_bf16`: ours on `k_cache` (the same values in bf16): the baseline the fp8 path's speedup is
  measured against. A baseline, not a peer: never the "best peer".
- `flashmla_fp8`: vLLM's FLASHMLA backend with `--kv-cache-dtype fp8`: `get_mla_metadata_dense_fp8` (made by
  FlashMLAMetadataBuilder._build_decode once per step, before the graph: in `prepare`) and
  `flash_mla_with_kvcache_fp8` over the wheel's `_flashmla_extension_C` (FlashMLAImpl.forward_mqa). It takes an fp8
  q with `descale_q`: vLLM's MLA layer quantizes q per tensor (static `_q_scale`, fused into the concat of
  ql_nope and q_pe it makes anyway); here q is quantized the same way (amax / 448, like the cache) in `prepare`,
  not timed. Its output carries that quantization error, so it is checked with a looser tolerance (see
  FP8_Q_OUT_REL_TOL).
- `flashmla_sglang_fp8`: SGLang 0.5.17's `flashmla` with `--kv-cache-dtype fp8_e4m3`: sgl-kernel's dense fp8
  FlashMLA, q quantized per tensor as for `flashmla_fp8`, with descale_q and descale_k.

vLLM's own `vllm/__init__.py` imports the whole engine, so the bundle ships none of it: `install_vllm_shim`
puts a bare `vllm` package (pointing at the bundle's `vllm/` folder) and tiny `vllm.logger`,
`vllm.platforms` and `vllm.triton_utils` stand-ins into `sys.modules`, the only vLLM modules the shipped
files import. Everything under the bundle's `vllm/` is the wheel's file, byte for byte.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

sys.path.append(str(Path(__file__).resolve().parent.parent))  # the source tree's mla_backend, if not installed
from mla_backend.kernel_facts import HEAD_DIM, HEAD_DIM_V, ROPE_DIM, current_gpu_is_hopper  # noqa: E402
from mla_backend.cli.bundle import SUMS, BundleError, extract, read_sums  # noqa: E402

OLD_FORMAT_SUMS = "peers.sha256"  # the peer bundle's own format before it became an mla_backend bundle

SHIM_MARKER = "__mla_bench_shim__"

# vLLM 0.26 attention_config.flash_attn_max_num_splits_for_cuda_graph (config/attention.py).
FA3_MAX_NUM_SPLITS_FOR_CUDA_GRAPH = 32
# vLLM 0.26 triton_mla.py: num_kv_splits = min(next_pow2(max(1, max_seq_len // 512)), 2 * #SMs).
TRITON_MIN_WORK_PER_SPLIT = 512
TRITON_SPLIT_OCCUPANCY_MULTIPLIER = 2
# FlashInfer's MLA examples and vLLM size the float workspace at 128 MiB.
FLASHINFER_WORKSPACE_BYTES = 128 * 1024 * 1024
# Tolerances for a peer that also quantizes q to e4m3 (flashmla_fp8; ours), against the same fp32 reference on the
# dequantized cache and bf16 q as every other entry. e4m3 keeps 3 mantissa bits: each q value moves by up to
# 2^-4 relative (~3.6% RMS), which moves every logit by ~0.06 at these inputs (randn q and K, 576 columns,
# scale 192^-0.5) and the output by ~3-4% relative; FlashMLA's fp8 kernel also multiplies P in e4m3 (its own
# test, against a reference on the fp8 q and K, allows cosine distance 5e-4, i.e. ~3% relative). Emulated in
# fp32 on these inputs (fp8 q, fp8 P, bf16 out; b8 h16/h32, s_k 1024..32768): out relative error 0.035-0.043,
# lse max |Δ| 0.013-0.030. Twice that: a step that writes zeros (1.0), skips work or reads the wrong pages
# still fails.
FP8_Q_OUT_REL_TOL = 8e-2
FP8_Q_LSE_ABS_TOL = 1e-1

StepOutput = tuple[torch.Tensor, Optional[torch.Tensor]]


class PeerUnavailable(RuntimeError):
    """The peer cannot run at all (import or load failure) or not for this batch shape."""


@dataclass
class DecodeBatch:
    """The common input of one decode step, in the core's (FlashMLA-compatible) contract."""

    q: torch.Tensor  # [b, s_q, h_q, 576] bf16
    k_cache: torch.Tensor  # [num_blocks, 64, 576] bf16; V is the first 512 columns
    block_table: torch.Tensor  # int32 [b, max_blocks]
    cache_seqlens: torch.Tensor  # int32 [b]; 0 allowed
    softmax_scale: float
    causal: bool
    max_seqlen_k: int  # host copy of cache_seqlens.max(): engines size some launches from it on the host
    # An fp8 cache (bench_decode --kv fp8): [num_blocks, 64, 576] float8_e4m3fn and its float32 [1] scale;
    # k_cache above then holds descale_k * k_cache_fp8 in bf16 (what the fp8 cache stands for).
    k_cache_fp8: Optional[torch.Tensor] = None
    descale_k: Optional[torch.Tensor] = None

    @property
    def b(self) -> int:
        return self.q.shape[0]

    @property
    def s_q(self) -> int:
        return self.q.shape[1]

    @property
    def h_q(self) -> int:
        return self.q.shape[2]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        fp8 = () if self.k_cache_fp8 is None else (self.k_cache_fp8, self.descale_k)
        return self.q, self.k_cache, self.block_table, self.cache_seqlens, *fp8


def with_keepalive(step: Callable[[], StepOutput], batch: DecodeBatch, *extra) -> Callable[[], StepOutput]:
    """Attach to `step` everything its launches read: the batch's tensors and `extra` (copies, metadata,
    workspaces, wrapper objects). Holding the step keeps them allocated as long as a graph of it exists."""
    step.keepalive = (*batch.tensors(), *extra)
    return step


class Peer:
    name = ""
    label = ""
    lse_base2 = False  # True: the step's lse is log2(sum 2^x), not the natural log
    kv_bytes = 2  # bytes per cached value the step reads (1: the fp8 cache)
    out_rel_tol: float | None = None  # None: bench_decode's OUT_REL_TOL / LSE_ABS_TOL
    lse_abs_tol: float | None = None

    def __init__(self, error: str | None = None):
        self.error = error

    @property
    def available(self) -> bool:
        return self.error is None

    def unsupported_reason(self, batch: DecodeBatch) -> str | None:
        """Why this peer cannot run this batch shape (None: it can)."""
        return None

    def prepare(self, batch: DecodeBatch) -> Callable[[], StepOutput]:
        if self.error is not None:
            raise PeerUnavailable(self.error)
        reason = self.unsupported_reason(batch)
        if reason is not None:
            raise PeerUnavailable(reason)
        return self._prepare(batch)

    def _prepare(self, batch: DecodeBatch) -> Callable[[], StepOutput]:
        raise NotImplementedError


class MlaBackendPeer(Peer):
    name = "mla_backend"
    label = "ours (mla_backend)"

    def __init__(self):
        super().__init__()
        import mla_backend.ops as ops

        self.ops = ops

    def plan(self, batch):
        """The step's plan. Made once per engine step for all layers (vLLM's metadata builder, before the graph;
        SGLang's graph, before the first layer), so a layer's work is the decode and its combine."""
        is_fp8 = self.cache(batch)[1] is not None
        return self.ops.get_mla_metadata(batch.cache_seqlens, batch.s_q * batch.h_q, 1, is_fp8_kvcache=is_fp8)

    def cache(self, batch):
        """(k_cache, descale_k) this peer decodes from."""
        return batch.k_cache, None

    def _prepare(self, batch):
        ops = self.ops
        k_cache, descale_k = self.cache(batch)
        k_cache = k_cache.unsqueeze(-2)
        meta, splits = self.plan(batch)

        def step():
            return ops.mla_decode_with_kvcache(
                batch.q, k_cache, batch.block_table, batch.cache_seqlens, HEAD_DIM_V, meta, splits,
                softmax_scale=batch.softmax_scale, causal=batch.causal, descale_k=descale_k)

        return with_keepalive(step, batch, k_cache, meta, splits)


class FlashMLAPeer(Peer):
    name = "flashmla"
    label = "FlashMLA (vLLM 0.26 _flashmla_C)"

    def __init__(self):
        super().__init__()
        # vLLM's wrapper swallows the extension's ImportError; import it first so a load failure shows.
        importlib.import_module("vllm._flashmla_C")
        importlib.import_module("vllm._flashmla_extension_C")
        flashmla = importlib.import_module("vllm.v1.attention.ops.flashmla")
        supported, reason = flashmla.is_flashmla_dense_supported()
        if not supported:
            raise PeerUnavailable(reason)
        self.flashmla = flashmla

    def _prepare(self, batch):
        flashmla = self.flashmla
        k_cache = batch.k_cache.unsqueeze(-2)
        # FlashMLAMetadataBuilder._build_decode makes one FlashMLASchedMeta per step; the step's first layer
        # fills its schedule, every later layer reuses it. A layer here is such a later one: one call before
        # capture fills the schedule, which the step's calls (and the graph) then read.
        sched_meta, _ = flashmla.get_mla_metadata(batch.cache_seqlens, batch.s_q * batch.h_q, 1,
                                                  is_fp8_kvcache=False)

        def step():
            # FlashMLAImpl.forward_mqa for a bf16 cache.
            return flashmla.flash_mla_with_kvcache(
                q=batch.q, k_cache=k_cache, block_table=batch.block_table,
                cache_seqlens=batch.cache_seqlens, head_dim_v=HEAD_DIM_V,
                tile_scheduler_metadata=sched_meta, softmax_scale=batch.softmax_scale,
                causal=batch.causal, is_fp8_kvcache=False)

        step()
        return with_keepalive(step, batch, k_cache, sched_meta)


class FlashMLASGLangPeer(Peer):
    """SGLang 0.5.17's `flashmla` backend: FlashMLA as built into sgl-kernel (0.4.5), not vLLM's fork. Its
    FlashMLABackend makes the schedule once per step (`get_mla_metadata`, in init_forward_metadata or before a
    graph replay: here in `prepare`) and calls `flash_mla_with_kvcache` per layer with it. The per-layer
    `seq_lens.to(torch.int32)` that backend also launches is left out: the kernel alone is compared."""

    name = "flashmla_sglang"
    label = "FlashMLA (SGLang 0.5.17 sgl_kernel.flash_mla)"

    def __init__(self):
        super().__init__()
        importlib.import_module("sgl_kernel.flashmla_ops")   # sgl_kernel's wrapper defers the load error; show it
        self.flash_mla = importlib.import_module("sgl_kernel.flash_mla")

    def quantized(self, batch):
        """(q, k_cache, descale_q, descale_k) this peer decodes from."""
        return batch.q, batch.k_cache, None, None

    def _prepare(self, batch):
        flash_mla = self.flash_mla
        q, k_cache, descale_q, descale_k = self.quantized(batch)
        k_cache = k_cache.unsqueeze(-2)
        meta, splits = flash_mla.get_mla_metadata(batch.cache_seqlens, batch.s_q * batch.h_q, 1,
                                                  is_fp8_kvcache=descale_k is not None)

        def step():
            return flash_mla.flash_mla_with_kvcache(
                q=q, k_cache=k_cache, block_table=batch.block_table, cache_seqlens=batch.cache_seqlens,
                head_dim_v=HEAD_DIM_V, tile_scheduler_metadata=meta, num_splits=splits,
                softmax_scale=batch.softmax_scale, causal=batch.causal, descale_q=descale_q, descale_k=descale_k)

        return with_keepalive(step, batch, q, k_cache, meta, splits, descale_q)   # descale_k is the batch's


def fa3_scheduler_buffer_size(b: int) -> int:
    """vLLM's persistent FA3 scheduler buffer: a tile semaphore + 4 vectors of round_up(b, 4) ints."""
    return 1 + -(-b // 4) * 4 * 4


class FA3MLAPeer(Peer):
    """vLLM's FLASH_ATTN_MLA decode in full-CUDA-graph mode (the scheduler runs outside the graph)."""

    name = "fa3_mla"
    label = "FA3-MLA (vLLM 0.26 _vllm_fa3_C; full-CUDA-graph mode: scheduler outside the graph, 32 splits)"
    num_splits = FA3_MAX_NUM_SPLITS_FOR_CUDA_GRAPH
    schedule_outside_graph = True

    def __init__(self):
        super().__init__()
        try:
            fa = importlib.import_module("vllm.vllm_flash_attn")
        except ImportError as exc:
            # The package init hides why the extension failed to load; its interface module keeps it.
            interface = sys.modules.get("vllm.vllm_flash_attn.flash_attn_interface")
            raise PeerUnavailable(f"{exc} (_vllm_fa3_C: {getattr(interface, 'FA3_UNAVAILABLE_REASON', '?')})"
                                  ) from exc
        reason = fa.fa_version_unsupported_reason(3)
        if reason is not None:
            raise PeerUnavailable(reason)
        self.fa = fa

    def _persistent_schedule(self, batch: DecodeBatch, cu_seqlens_q: torch.Tensor) -> torch.Tensor:
        """FlashAttnMLAMetadataBuilder._build_decode with full CUDA graphs: the schedule is computed from the
        seqlens outside the graph and copied into a persistent zero-padded buffer that the graph reads."""
        schedule = self.fa.get_scheduler_metadata(
            batch_size=batch.b, max_seqlen_q=batch.s_q, max_seqlen_k=batch.max_seqlen_k, num_heads_q=batch.h_q,
            num_heads_kv=1, headdim=ROPE_DIM, cache_seqlens=batch.cache_seqlens, qkv_dtype=batch.k_cache.dtype,
            headdim_v=HEAD_DIM_V, page_size=batch.k_cache.shape[1], cu_seqlens_q=cu_seqlens_q,
            causal=batch.causal, num_splits=self.num_splits)
        persistent = torch.zeros(fa3_scheduler_buffer_size(batch.b), dtype=torch.int32, device=batch.q.device)
        if schedule.shape[0] > persistent.shape[0]:
            raise RuntimeError(f"FA3 scheduler metadata of {schedule.shape[0]} ints exceeds vLLM's buffer of "
                               f"{persistent.shape[0]}")
        persistent[:schedule.shape[0]] = schedule
        return persistent[:schedule.shape[0]]  # the view keeps the whole buffer alive

    def _prepare(self, batch):
        flash_attn_varlen_func = self.fa.flash_attn_varlen_func
        b, s_q, h_q = batch.b, batch.s_q, batch.h_q
        # vLLM hands FA3 the absorbed q as two tensors (ql_nope, q_pe); contiguous copies stand for them.
        q_nope = batch.q[..., :HEAD_DIM_V].reshape(b * s_q, h_q, HEAD_DIM_V).contiguous()
        q_pe = batch.q[..., HEAD_DIM_V:].reshape(b * s_q, h_q, ROPE_DIM).contiguous()
        kv_c_cache = batch.k_cache[..., :HEAD_DIM_V]  # [num_blocks, 64, 512] view of the 576-wide cache
        k_pe_cache = batch.k_cache[..., HEAD_DIM_V:]
        cu_seqlens_q = torch.arange(0, (b + 1) * s_q, s_q, dtype=torch.int32, device=batch.q.device)
        scheduler_metadata = self._persistent_schedule(batch, cu_seqlens_q) if self.schedule_outside_graph else None
        num_splits = self.num_splits

        def step():
            # FlashAttnMLAImpl.forward_mqa without DCP (no LSE).
            out = flash_attn_varlen_func(
                q=q_pe, k=k_pe_cache.unsqueeze(-2), v=kv_c_cache.unsqueeze(-2), q_v=q_nope,
                max_seqlen_q=s_q, cu_seqlens_q=cu_seqlens_q, max_seqlen_k=batch.max_seqlen_k,
                seqused_k=batch.cache_seqlens, block_table=batch.block_table,
                softmax_scale=batch.softmax_scale, causal=True, return_softmax_lse=False, fa_version=3,
                scheduler_metadata=scheduler_metadata, num_splits=num_splits,
                cp_world_size=1, cp_rank=0, cp_tot_seqused_k=None)
            return out.view(b, s_q, h_q, HEAD_DIM_V), None

        return with_keepalive(step, batch, q_nope, q_pe, kv_c_cache, k_pe_cache, cu_seqlens_q, scheduler_metadata)


class FA3MLADefaultPeer(FA3MLAPeer):
    """The same FA3 call with FA3's own split heuristics and scheduler inside the graph."""

    name = "fa3_mla_default"
    label = "FA3-MLA (vLLM 0.26 _vllm_fa3_C; scheduler_metadata=None, num_splits=0: FA3's own heuristics)"
    num_splits = 0
    schedule_outside_graph = False


def triton_num_kv_splits(max_seq_len: int, sm_count: int) -> int:
    """vLLM 0.26 TRITON_MLA's split count for a decode batch."""
    ideal = 1 << (max(1, max_seq_len // TRITON_MIN_WORK_PER_SPLIT) - 1).bit_length()
    return min(ideal, sm_count * TRITON_SPLIT_OCCUPANCY_MULTIPLIER)


class TritonMLAPeer(Peer):
    name = "triton_mla"
    label = "vLLM 0.26 Triton MLA"

    def __init__(self):
        super().__init__()
        self.triton_decode = importlib.import_module("vllm.v1.attention.ops.triton_decode_attention")

    def unsupported_reason(self, batch):
        if batch.s_q != 1:
            return "s_q > 1: vLLM's TRITON_MLA decodes single tokens only (multi-token steps go to prefill)"
        return None

    def _prepare(self, batch):
        decode_attention_fwd = self.triton_decode.decode_attention_fwd
        b, h_q = batch.b, batch.h_q
        device = batch.q.device
        q = batch.q.view(b, h_q, HEAD_DIM)
        kv = batch.k_cache.unsqueeze(2)  # [num_blocks, 64, 1, 576]
        kv_c = kv[..., :HEAD_DIM_V]
        sm_count = torch.cuda.get_device_properties(device).multi_processor_count
        num_kv_splits = triton_num_kv_splits(batch.max_seqlen_k, sm_count)
        # vLLM serves this from a workspace reserved up front; it is not part of the step.
        attn_logits = torch.empty((b, h_q, num_kv_splits, HEAD_DIM_V + 1), dtype=torch.float32,
                                  device=device)
        kv_scale = torch.ones((), dtype=torch.float32, device=device)  # layer._k_scale of a bf16 cache

        def step():
            # TritonMLAImpl.forward_mqa: o and lse are zero-filled every step.
            out = torch.zeros(b, h_q, HEAD_DIM_V, dtype=q.dtype, device=device)
            lse = torch.zeros(b, h_q, dtype=q.dtype, device=device)
            decode_attention_fwd(q, kv, kv_c, out, lse, batch.block_table, batch.cache_seqlens,
                                 attn_logits, num_kv_splits, batch.softmax_scale, batch.k_cache.shape[1],
                                 k_scale=kv_scale, v_scale=kv_scale, is_mla=True)
            return out.view(b, 1, h_q, HEAD_DIM_V), lse.view(b, h_q, 1)

        return with_keepalive(step, batch, q, kv, kv_c, attn_logits, kv_scale)


def flashinfer_page_lists(block_table: torch.Tensor, seqlens: torch.Tensor,
                          page_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kv_indptr [b + 1], kv_indices [Σpages]) in FlashInfer's CSR layout: request i's pages are
    kv_indices[kv_indptr[i]:kv_indptr[i + 1]], its first ceil(seqlen_i / page_size) block_table entries.
    Empty requests own no entries; nothing past a request's last page is listed."""
    pages = (seqlens.to(torch.int64) + page_size - 1) // page_size
    kv_indptr = torch.zeros(seqlens.shape[0] + 1, dtype=torch.int32, device=seqlens.device)
    kv_indptr[1:] = torch.cumsum(pages, 0).to(torch.int32)
    columns = torch.arange(block_table.shape[1], device=block_table.device)
    in_use = columns[None, :] < pages.to(block_table.device)[:, None]
    kv_indices = block_table[in_use].to(torch.int32).contiguous()  # row-major: request order
    return kv_indptr, kv_indices


class FlashInferMLAPeer(Peer):
    name = "flashinfer_mla"
    label = "FlashInfer BatchMLAPagedAttentionWrapper (fa3; host plan() not timed)"
    lse_base2 = True

    def __init__(self):
        super().__init__()
        if not current_gpu_is_hopper():
            raise PeerUnavailable("FlashInfer's fa3 MLA backend needs an SM90 GPU")
        self.flashinfer = importlib.import_module("flashinfer")
        modules = importlib.import_module("flashinfer.jit.attention.modules")
        spec = modules.gen_batch_mla_module("fa3", torch.bfloat16, torch.bfloat16, torch.bfloat16, torch.int32,
                                            HEAD_DIM_V, ROPE_DIM, False)
        if not (spec.is_aot or spec.is_compiled or shutil.which("nvcc")):
            raise PeerUnavailable(f"no prebuilt {spec.name}.so and no nvcc to JIT-build it")

    def _prepare(self, batch):
        b, s_q, h_q = batch.b, batch.s_q, batch.h_q
        device = batch.q.device
        page_size = batch.k_cache.shape[1]
        kv_indptr, kv_indices = flashinfer_page_lists(batch.block_table, batch.cache_seqlens, page_size)
        kv_lens = batch.cache_seqlens.to(torch.int32).clone()
        qo_indptr = torch.arange(0, (b + 1) * s_q, s_q, dtype=torch.int32, device=device)
        workspace = torch.zeros(FLASHINFER_WORKSPACE_BYTES, dtype=torch.uint8, device=device)
        # use_cuda_graph: run() reads these very buffers (plan() copies into them), never reallocated ones.
        wrapper = self.flashinfer.mla.BatchMLAPagedAttentionWrapper(
            workspace, use_cuda_graph=True, qo_indptr=qo_indptr, kv_indptr=kv_indptr,
            kv_indices=kv_indices, kv_len_arr=kv_lens, backend="fa3")
        wrapper.plan(qo_indptr, kv_indptr, kv_indices, kv_lens, h_q, HEAD_DIM_V, ROPE_DIM, page_size,
                     batch.causal, batch.softmax_scale, batch.q.dtype, batch.k_cache.dtype)
        q_nope = batch.q[..., :HEAD_DIM_V].reshape(b * s_q, h_q, HEAD_DIM_V).contiguous()
        q_pe = batch.q[..., HEAD_DIM_V:].reshape(b * s_q, h_q, ROPE_DIM).contiguous()
        ckv = batch.k_cache[..., :HEAD_DIM_V]
        kpe = batch.k_cache[..., HEAD_DIM_V:]

        def step():
            out, lse = wrapper.run(q_nope, q_pe, ckv, kpe, return_lse=True)
            # out [b*s_q, h, 512]; lse [b*s_q, h], base 2 (see lse_base2)
            return out.view(b, s_q, h_q, HEAD_DIM_V), lse.view(b, s_q, h_q).permute(0, 2, 1)

        # The wrapper holds its int workspace (plan info), pinned staging buffer and the index buffers.
        return with_keepalive(step, batch, wrapper, workspace, kv_indptr, kv_indices, kv_lens, qo_indptr,
                              q_nope, q_pe, ckv, kpe)


def fp8_cache_reason(batch: DecodeBatch) -> str | None:
    if batch.k_cache_fp8 is None or batch.descale_k is None:
        return "needs the batch's fp8 cache and descale_k (bench_decode --kv fp8)"
    return None


def quantize_q_fp8(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q as vLLM's MLA layer hands it to an fp8-q backend: float8_e4m3fn with one static per-tensor scale
    (QuantFP8 static, GroupShape.PER_TENSOR: q / q_scale clamped to +-448); q_scale = amax / 448 here, the tightest
    per-tensor scale (vLLM's comes from the checkpoint or one amax measurement). Returns (q8, descale_q [1])."""
    from mla_backend.testing import quantize_kv_fp8  # the same per-tensor amax / 448 quantization as the cache

    return quantize_kv_fp8(q)


class OnFp8CacheQuantizedQ:
    """A peer on the batch's fp8 cache whose Q.K^T also runs on a query rounded to e4m3: 1 byte a cached value,
    held to the fp8-q tolerances (FP8_Q_OUT_REL_TOL), and only where the batch has an fp8 cache."""

    kv_bytes = 1
    out_rel_tol = FP8_Q_OUT_REL_TOL
    lse_abs_tol = FP8_Q_LSE_ABS_TOL

    def unsupported_reason(self, batch):
        return fp8_cache_reason(batch)


class MlaBackendFp8Peer(OnFp8CacheQuantizedQ, MlaBackendPeer):
    """Ours on the fp8 cache: bf16 q, float8_e4m3fn k_cache, descale_k. The kernel quantizes q per row to e4m3
    for an fp8 Q.K^T (ops' docstring), so it is held to the fp8-q tolerances as flashmla_fp8."""

    name = "mla_backend"
    label = "ours (mla_backend, fp8 e4m3 KV cache, descale_k)"

    def cache(self, batch):
        return batch.k_cache_fp8, batch.descale_k


class MlaBackendBf16BaselinePeer(MlaBackendPeer):
    """Ours on the bf16 cache holding the fp8 cache's values: the baseline of the fp8 speedup."""

    name = "mla_backend_bf16"
    label = "ours bf16 (mla_backend on the dequantized cache in bf16: the fp8 speedup's baseline)"


class FlashMLAFp8Peer(OnFp8CacheQuantizedQ, Peer):
    """vLLM 0.26 FLASHMLA with --kv-cache-dtype fp8: the dense fp8 kernel of `_flashmla_extension_C`."""

    name = "flashmla_fp8"
    label = ("FlashMLA fp8 (vLLM 0.26 _flashmla_extension_C dense fp8; q quantized per tensor, descale_q and "
             "descale_k)")

    def __init__(self):
        super().__init__()
        importlib.import_module("vllm._flashmla_C")  # vLLM's wrapper swallows the ImportErrors; show them
        importlib.import_module("vllm._flashmla_extension_C")
        flashmla = importlib.import_module("vllm.v1.attention.ops.flashmla")
        supported, reason = flashmla.is_flashmla_dense_supported()
        if not supported:
            raise PeerUnavailable(reason)
        for function in ("get_mla_metadata_dense_fp8", "flash_mla_with_kvcache_fp8"):
            if not hasattr(flashmla, function):
                raise PeerUnavailable(f"vllm.v1.attention.ops.flashmla has no {function}")
        self.flashmla = flashmla

    def _prepare(self, batch):
        flashmla = self.flashmla
        q8, descale_q = quantize_q_fp8(batch.q)
        k_cache = batch.k_cache_fp8.unsqueeze(-2)
        # FlashMLAMetadataBuilder._build_decode with an fp8 cache: the dense-fp8 schedule, once per step, before
        # the graph (copied into persistent buffers under full CUDA graphs; this one is persistent already).
        tile_scheduler_metadata, num_splits = flashmla.get_mla_metadata_dense_fp8(
            batch.cache_seqlens, batch.s_q * batch.h_q, 1)

        def step():
            # FlashMLAImpl.forward_mqa for a quantized cache.
            return flashmla.flash_mla_with_kvcache_fp8(
                q=q8, k_cache=k_cache, block_table=batch.block_table, cache_seqlens=batch.cache_seqlens,
                head_dim_v=HEAD_DIM_V, tile_scheduler_metadata=tile_scheduler_metadata, num_splits=num_splits,
                softmax_scale=batch.softmax_scale, causal=batch.causal, descale_q=descale_q,
                descale_k=batch.descale_k)

        return with_keepalive(step, batch, q8, descale_q, k_cache, tile_scheduler_metadata, num_splits)


class FlashMLASGLangFp8Peer(OnFp8CacheQuantizedQ, FlashMLASGLangPeer):
    """SGLang 0.5.17's `flashmla` with --kv-cache-dtype fp8_e4m3: sgl_kernel's dense fp8 kernel, q quantized to e4m3
    per tensor (SGLang's backend scales it by the layer's k_scale, else by one) with descale_q and descale_k."""

    name = "flashmla_sglang_fp8"
    label = "FlashMLA fp8 (SGLang 0.5.17 sgl_kernel.flash_mla dense fp8; q quantized per tensor)"

    def quantized(self, batch):
        q8, descale_q = quantize_q_fp8(batch.q)
        return q8, batch.k_cache_fp8, descale_q, batch.descale_k


PEER_CLASSES: tuple[type[Peer], ...] = (MlaBackendPeer, FlashMLAPeer, FA3MLAPeer, FA3MLADefaultPeer,
                                         TritonMLAPeer, FlashInferMLAPeer, FlashMLASGLangPeer)
PEER_NAMES = tuple(cls.name for cls in PEER_CLASSES)
FP8_PEER_CLASSES: tuple[type[Peer], ...] = (MlaBackendFp8Peer, MlaBackendBf16BaselinePeer, FlashMLAFp8Peer,
                                             FlashMLASGLangFp8Peer)
FP8_PEER_NAMES = tuple(cls.name for cls in FP8_PEER_CLASSES)
ALL_PEER_NAMES = tuple(dict.fromkeys(PEER_NAMES + FP8_PEER_NAMES))
# Our own other paths, timed for a ratio: never the best peer.
BASELINE_NAMES = (MlaBackendBf16BaselinePeer.name,)
KV_DTYPES = ("bf16", "fp8")


def peer_classes(kv: str = "bf16") -> tuple[type[Peer], ...]:
    if kv not in KV_DTYPES:
        raise ValueError(f"kv: expected one of {KV_DTYPES}, got {kv!r}")
    return FP8_PEER_CLASSES if kv == "fp8" else PEER_CLASSES


# ----------------------------------------------------------------------------------------------------
# The bundle: unpacking and the vLLM import shim


def _cache_dir() -> Path:
    return Path(os.environ.get("MLA_PEERS_CACHE", Path(tempfile.gettempdir()) / "mla_peers"))


def unpack_bundle(parts_dir: Path, dest: Path | None = None) -> Path:
    """Check the parts in parts_dir against SHA256SUMS and extract them once, streaming; returns the bundle root.

    The extraction lands in `<dest or $MLA_PEERS_CACHE or /tmp/mla_peers>/<archive sha256[:16]>/` and is reused.
    """
    parts_dir = Path(parts_dir)
    if (parts_dir / OLD_FORMAT_SUMS).exists() and not (parts_dir / SUMS).exists():
        raise BundleError(f"{parts_dir} holds a peer bundle of the old format ({OLD_FORMAT_SUMS}); rebuild it on a "
                          f"machine with PyPI access: python benchmarks/peers_bundle.py --out {parts_dir}")
    _, whole = read_sums(parts_dir)
    root = (dest or _cache_dir()) / whole[:16]
    if not (root / ".complete").exists():
        if root.exists():
            shutil.rmtree(root)  # an extraction cut short
        extract(parts_dir, root)
        (root / ".complete").write_text(whole + "\n")
    return root


def resolve_bundle(path: str | os.PathLike) -> Path:
    """Accept the parts folder or an extracted bundle; return the folder holding vllm/."""
    path = Path(path)
    if (path / "vllm").is_dir():
        return path
    return unpack_bundle(path)


class _Platform:
    """The part of vLLM's `current_platform` that the shipped files call, for the current CUDA device."""

    def is_cuda(self) -> bool:
        return torch.cuda.is_available() and torch.version.cuda is not None

    def is_rocm(self) -> bool:
        return torch.version.hip is not None

    def is_xpu(self) -> bool:
        return False

    def get_device_capability(self, device_id: int = 0) -> tuple[int, int] | None:
        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_capability(device_id)

    def has_device_capability(self, capability: int, device_id: int = 0) -> bool:
        cap = self.get_device_capability(device_id)
        return cap is not None and cap[0] * 10 + cap[1] >= capability

    def is_device_capability_family(self, capability: int, device_id: int = 0) -> bool:
        cap = self.get_device_capability(device_id)
        return cap is not None and cap[0] == capability // 10


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    setattr(module, SHIM_MARKER, True)
    return module


def _triton_utils_getattr(name: str):
    if name == "triton":
        return importlib.import_module("triton")
    if name == "tl":
        return importlib.import_module("triton.language")
    raise AttributeError(name)


def install_vllm_shim(bundle_root: str | os.PathLike) -> None:
    """Make `import vllm.<shipped module>` load the bundle's files without vLLM's package init.

    Refuses when a real vLLM is already imported in this process (its modules would mix with these).
    """
    vllm_dir = str(Path(bundle_root) / "vllm")
    existing = sys.modules.get("vllm")
    if existing is not None:
        if getattr(existing, SHIM_MARKER, False) and list(existing.__path__) == [vllm_dir]:
            return
        raise RuntimeError(f"a different 'vllm' is already imported ({getattr(existing, '__file__', existing)});"
                           " run the benchmark in a process without vLLM")
    package = _module("vllm", __path__=[vllm_dir], __package__="vllm", __file__=None)
    package.__spec__ = importlib.machinery.ModuleSpec("vllm", None, is_package=True)
    package.__spec__.submodule_search_locations = [vllm_dir]
    shims = {
        "vllm": package,
        "vllm.logger": _module("vllm.logger", init_logger=logging.getLogger),
        "vllm.platforms": _module("vllm.platforms", current_platform=_Platform()),
        "vllm.triton_utils": _module("vllm.triton_utils", __getattr__=_triton_utils_getattr),
    }
    for name, module in shims.items():
        if name != "vllm":
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
            setattr(package, name.split(".", 1)[1], module)
    sys.modules.update(shims)


def add_bundle_site(bundle_root: str | os.PathLike) -> None:
    """Append the bundle's `site/` (FlashInfer and its runtime wheels) to sys.path: the box's own wins."""
    site = Path(bundle_root) / "site"
    if site.is_dir() and str(site) not in sys.path:
        sys.path.append(str(site))
    # apache-tvm-ffi JIT-compiles a torch addon at import when torch lacks the DLPack C exchange API; the
    # fallback path works for FlashInfer's MLA (its C++ side allocates nothing), so skip that compile.
    if not any(hasattr(torch.Tensor, a) for a in ("__dlpack_c_exchange_api__", "__c_dlpack_exchange_api__")):
        os.environ.setdefault("TVM_FFI_DISABLE_TORCH_C_DLPACK", "1")


def load_peers(path: str | os.PathLike | None, names: tuple[str, ...] | None = None,
               kv: str = "bf16") -> dict[str, Peer]:
    """name -> peer for each requested name of the `kv` cache's set (PEER_NAMES, or FP8_PEER_NAMES for kv="fp8";
    names None: all of them); a peer that fails to load keeps the exception text in .error.

    path: the `.peers` parts folder (unpacked on first use), an extracted bundle, or None (vLLM-based
    peers are then reported unavailable; ours and FlashInfer are still tried).
    """
    classes = peer_classes(kv)
    if names is None:
        names = tuple(cls.name for cls in classes)
    bundle_error = None
    if path is not None:
        try:
            root = resolve_bundle(path)
            install_vllm_shim(root)
            add_bundle_site(root)
        except Exception as exc:  # noqa: BLE001 - reported per peer, never raised
            bundle_error = f"peer bundle: {type(exc).__name__}: {exc}"
    else:
        bundle_error = "no peer bundle given (--peers)"
    needs_bundle = {FlashMLAPeer.name, FA3MLAPeer.name, FA3MLADefaultPeer.name, TritonMLAPeer.name,
                    FlashMLAFp8Peer.name}
    peers: dict[str, Peer] = {}
    for cls in classes:
        if cls.name not in names:
            continue
        if bundle_error is not None and cls.name in needs_bundle:
            peers[cls.name] = _unavailable(cls, bundle_error)
            continue
        try:
            peers[cls.name] = cls()
        except Exception as exc:  # noqa: BLE001 - an unloadable peer is a result, not a crash
            peers[cls.name] = _unavailable(cls, f"{type(exc).__name__}: {exc}")
    return peers


def _unavailable(cls: type[Peer], error: str) -> Peer:
    peer = Peer.__new__(cls)
    Peer.__init__(peer, error)
    return peer


if __name__ == "__main__":
    # Smoke test on the box: `python benchmarks/peers.py .peers` prints where the bundle is and each peer's state.
    bundle = sys.argv[1] if len(sys.argv) > 1 else ".peers"
    print(f"bundle: {resolve_bundle(bundle)}")
    for kv_dtype in KV_DTYPES:
        for peer_name, loaded in load_peers(bundle, kv=kv_dtype).items():
            print(f"{kv_dtype} {peer_name:<17} {'ok' if loaded.available else 'unavailable: ' + str(loaded.error)}")
