"""Public ops: the one place the tensor contract is written and checked.

    tile_scheduler_metadata, num_splits = get_mla_metadata(cache_seqlens, s_q * h_q // h_kv, h_kv)
    out, lse = mla_decode_with_kvcache(q, k_cache, block_table, cache_seqlens, 512,
                                       tile_scheduler_metadata, num_splits, softmax_scale, causal)

Shapes and dtypes (FlashMLA-compatible, so switching is a change of import):
    q                       [b, s_q, h_q, 576] bfloat16 or float16, last dim contiguous, 16-byte aligned rows;
                            512 latent ("nope" after W_UK absorption) + 64 RoPE. 1 <= s_q <= 16, 1 <= h_q <= 128.
    q_rope (keyword)        optional [b, s_q, h_q, 64], dtype of q, the same layout rules: the RoPE columns kept
                            apart, as engines compute them; q is then only the [b, s_q, h_q, 512] latent part,
                            and nothing is concatenated.
    k_cache                 [num_blocks, 64, 1, 576] or [num_blocks, 64, 576], dtype of q, last dim
                            contiguous, any stride(0) (layer-interleaved caches work). V = K[..., :512].
    block_table             int32 [b, max_blocks]; entries past a request's last page are never read.
    cache_seqlens           int32 [b]; 0 is allowed (out = 0, lse = +inf).
    tile_scheduler_metadata int32 [num_sm_parts, 8], num_splits int32 [b + 1]: from get_mla_metadata,
                            computed on the GPU without a host sync; valid for every layer of one step.
    out                     [b, s_q, h_q, 512] in q's dtype.
    lse                     float32 [b, h_q, s_q], natural log; +inf for rows that see no key.
    causal                  with s_q > 1, bottom-right aligned: query i sees keys [0, seqlen - (s_q-1-i)).
    softmax_scale           the caller's (vLLM passes qk_head_dim**-0.5 * mscale**2); default 576**-0.5.

Every argument is checked here, before anything reaches a kernel: a bad one raises ValueError naming
it. On CPU tensors the ops run the fp32 reference and the Python scheduler (for tests and tracing).
"""
from __future__ import annotations

import functools
import math
import os

import torch

from mla_backend import reference, scheduler

HEAD_DIM = 576
HEAD_DIM_V = 512
BLOCK_SIZE = scheduler.BLOCK_SIZE
MAX_H_Q = 128
MAX_S_Q = 16
MAX_BATCH = 16384           # the scheduler keeps one int per request in shared memory
DEFAULT_NUM_SMS = 132       # H100 SXM / H200; only used for CPU tensors
DTYPES = (torch.bfloat16, torch.float16)

_lib = torch.library.Library("mla_backend", "DEF")
_lib.define("tile_scheduler(Tensor cache_seqlens, int num_sm_parts) -> (Tensor, Tensor)")
_lib.define(
    "decode_paged(Tensor q, Tensor? q_rope, Tensor k_cache, Tensor block_table, Tensor cache_seqlens, "
    "Tensor tile_scheduler_metadata, Tensor num_splits, float softmax_scale, bool causal) -> (Tensor, Tensor)"
)


@torch.library.impl(_lib, "tile_scheduler", "CPU")
def _tile_scheduler_cpu(cache_seqlens, num_sm_parts):
    return scheduler.tile_scheduler(cache_seqlens, num_sm_parts)


@torch.library.impl(_lib, "decode_paged", "CPU")
def _decode_paged_cpu(q, q_rope, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits,
                      softmax_scale, causal):
    if q_rope is not None:
        q = torch.cat([q, q_rope], dim=-1)
    out, lse = reference.mla_decode_reference(q, k_cache, block_table, cache_seqlens, HEAD_DIM_V, softmax_scale,
                                              causal)
    return out.to(q.dtype), lse


@torch.library.register_fake("mla_backend::tile_scheduler")
def _tile_scheduler_fake(cache_seqlens, num_sm_parts):
    return (cache_seqlens.new_empty(num_sm_parts, scheduler.SCHED_FIELDS),
            cache_seqlens.new_empty(cache_seqlens.shape[0] + 1))


@torch.library.register_fake("mla_backend::decode_paged")
def _decode_paged_fake(q, q_rope, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits,
                       softmax_scale, causal):
    b, s_q, h_q, _ = q.shape
    return q.new_empty(b, s_q, h_q, HEAD_DIM_V), q.new_empty(b, h_q, s_q, dtype=torch.float32)


@functools.lru_cache(maxsize=None)
def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return DEFAULT_NUM_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def num_sm_parts(num_q_rows: int, device: torch.device) -> int:
    """Rows of tile_scheduler_metadata for s_q * h_q = num_q_rows on this device (what engines size buffers by)."""
    return scheduler.num_sm_parts(num_q_rows, _num_sms(torch.device(device)))


def _ensure_kernels(device: torch.device) -> None:
    if device.type == "cuda":
        from mla_backend._build import load_extension

        load_extension()


def _check(ok: bool, argument: str, expected: str, got: object) -> None:
    """Raises ValueError naming the argument; a tensor `got` is described only then (checks run per call)."""
    if not ok:
        raise ValueError(f"{argument}: expected {expected}, got {_describe(got) if isinstance(got, torch.Tensor) else got}")


def _describe(t: torch.Tensor) -> str:
    return f"{t.dtype} tensor of shape {tuple(t.shape)} on {t.device}"


def _check_int32_vector(t, name: str, length: int | None = None) -> None:
    _check(isinstance(t, torch.Tensor), name, "a torch.Tensor", type(t).__name__)
    _check(t.dtype == torch.int32, name, "dtype torch.int32", t)
    _check(t.dim() == 1 and (length is None or t.shape[0] == length), name,
           f"a 1-D tensor{'' if length is None else f' of length {length}'}", t)
    _check(t.is_contiguous(), name, "a contiguous tensor", f"strides {t.stride()}")


def _check_same_device(t: torch.Tensor, name: str, device: torch.device) -> None:
    _check(t.device == device, name, f"a tensor on {device} (the device of q)", t)


def _check_hopper(device: torch.device) -> None:
    if device.type != "cuda":
        return
    major, minor = torch.cuda.get_device_capability(device)
    if major != 9:
        raise RuntimeError(
            f"mla_backend's decode kernel needs a Hopper GPU (compute capability 9.x, sm_90a); "
            f"{torch.cuda.get_device_name(device)} has {major}.{minor}"
        )


def _runtime_checks_enabled(check_values: bool) -> bool:
    """Checks that read tensor values need a host sync: skipped while capturing or compiling."""
    if not check_values or os.environ.get("MLA_BACKEND_SKIP_VALUE_CHECKS", "0") == "1":
        return False
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def get_mla_metadata(cache_seqlens: torch.Tensor, num_heads_per_head_k: int,
                     num_heads_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile-scheduler plan for one decode step, shared by all layers of that step.

    cache_seqlens: int32 [b]; num_heads_per_head_k: s_q * h_q // h_kv; num_heads_k: h_kv (must be 1).
    Returns (tile_scheduler_metadata int32 [num_sm_parts, 8], num_splits int32 [b + 1]), where
    num_sm_parts depends only on (s_q * h_q, number of SMs), so a CUDA graph can capture the call.
    """
    _check_int32_vector(cache_seqlens, "cache_seqlens")
    b = cache_seqlens.shape[0]
    _check(1 <= b <= MAX_BATCH, "cache_seqlens", f"a batch size in [1, {MAX_BATCH}]", b)
    _check(num_heads_k == 1, "num_heads_k", "1 (MLA has one latent KV head)", num_heads_k)
    _check(isinstance(num_heads_per_head_k, int) and 1 <= num_heads_per_head_k <= MAX_S_Q * MAX_H_Q,
           "num_heads_per_head_k", f"s_q * h_q as an int in [1, {MAX_S_Q * MAX_H_Q}]", num_heads_per_head_k)
    _check_hopper(cache_seqlens.device)
    _ensure_kernels(cache_seqlens.device)
    parts = num_sm_parts(num_heads_per_head_k, cache_seqlens.device)
    return torch.ops.mla_backend.tile_scheduler(cache_seqlens, parts)


def _check_query_rows(t: torch.Tensor, name: str) -> None:
    """The kernel copies query rows in 16-byte pieces: a contiguous last dimension, 16-byte aligned rows."""
    _check(t.stride(-1) == 1 and all(stride % 8 == 0 for stride in t.stride()[:-1]) and t.data_ptr() % 16 == 0,
           name, "a contiguous last dimension and 16-byte aligned rows (other strides multiples of 8)",
           f"strides {t.stride()}, address {t.data_ptr():#x}")


def _check_decode_inputs(q, q_rope, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                         num_splits, softmax_scale, causal, check_values) -> torch.Tensor:
    """Validates the contract and returns k_cache as a 3-D [num_blocks, 64, 576] view."""
    _check(isinstance(q, torch.Tensor), "q", "a torch.Tensor", type(q).__name__)
    _check(q.dtype in DTYPES, "q", "dtype torch.bfloat16 or torch.float16", q)
    q_cols = HEAD_DIM if q_rope is None else HEAD_DIM_V
    _check(q.dim() == 4 and q.shape[-1] == q_cols, "q", f"shape [b, s_q, h_q, {q_cols}]"
           + (" (its RoPE columns are in q_rope)" if q_rope is not None else ""), q)
    b, s_q, h_q, _ = q.shape
    _check(b >= 1, "q", "a batch size >= 1", b)
    _check(1 <= s_q <= MAX_S_Q, "q", f"s_q (dim 1) in [1, {MAX_S_Q}]", s_q)
    _check(1 <= h_q <= MAX_H_Q, "q", f"h_q (dim 2) in [1, {MAX_H_Q}]", h_q)
    _check_query_rows(q, "q")
    device = q.device
    _check(device.type in ("cuda", "cpu"), "q", "a CUDA tensor", q)
    if q_rope is not None:
        _check(isinstance(q_rope, torch.Tensor), "q_rope", "None or a torch.Tensor", type(q_rope).__name__)
        _check(q_rope.dtype == q.dtype, "q_rope", f"the dtype of q ({q.dtype})", q_rope)
        _check(tuple(q_rope.shape) == (b, s_q, h_q, HEAD_DIM - HEAD_DIM_V), "q_rope",
               f"shape [b={b}, s_q={s_q}, h_q={h_q}, {HEAD_DIM - HEAD_DIM_V}]", q_rope)
        _check_query_rows(q_rope, "q_rope")
        _check_same_device(q_rope, "q_rope", device)

    _check(isinstance(k_cache, torch.Tensor), "k_cache", "a torch.Tensor", type(k_cache).__name__)
    _check_same_device(k_cache, "k_cache", device)
    _check(k_cache.dtype == q.dtype, "k_cache", f"the dtype of q ({q.dtype})", k_cache)
    if k_cache.dim() == 4:
        _check(k_cache.shape[2] == 1, "k_cache", "one KV head: shape [num_blocks, 64, 1, 576]", k_cache)
        k_cache = k_cache.select(2, 0)
    _check(k_cache.dim() == 3 and k_cache.shape[1] == BLOCK_SIZE and k_cache.shape[2] == HEAD_DIM, "k_cache",
           f"shape [num_blocks, {BLOCK_SIZE}, 1, {HEAD_DIM}] or [num_blocks, {BLOCK_SIZE}, {HEAD_DIM}] "
           f"(block size {BLOCK_SIZE})", k_cache)
    _check(k_cache.shape[0] >= 1, "k_cache", "at least one block", k_cache)
    _check(k_cache.stride(2) == 1 and k_cache.stride(1) % 8 == 0 and k_cache.stride(0) % 8 == 0
           and k_cache.data_ptr() % 16 == 0, "k_cache",
           "a contiguous last dimension and 16-byte aligned rows and blocks", f"strides {k_cache.stride()}")

    _check(isinstance(block_table, torch.Tensor), "block_table", "a torch.Tensor", type(block_table).__name__)
    _check(block_table.dtype == torch.int32, "block_table", "dtype torch.int32", block_table)
    _check(block_table.dim() == 2 and block_table.shape[0] == b and block_table.shape[1] >= 1, "block_table",
           f"shape [b={b}, max_blocks >= 1]", block_table)
    _check(block_table.stride(1) == 1, "block_table", "a contiguous last dimension", f"strides {block_table.stride()}")
    _check_same_device(block_table, "block_table", device)

    _check_int32_vector(cache_seqlens, "cache_seqlens", b)
    _check_same_device(cache_seqlens, "cache_seqlens", device)
    _check(head_dim_v == HEAD_DIM_V, "head_dim_v", str(HEAD_DIM_V), head_dim_v)

    parts = num_sm_parts(s_q * h_q, device)
    _check(isinstance(tile_scheduler_metadata, torch.Tensor) and tile_scheduler_metadata.dtype == torch.int32
           and tuple(tile_scheduler_metadata.shape) == (parts, scheduler.SCHED_FIELDS)
           and tile_scheduler_metadata.is_contiguous(), "tile_scheduler_metadata",
           f"a contiguous int32 tensor of shape ({parts}, {scheduler.SCHED_FIELDS}) from get_mla_metadata(cache_seqlens, "
           f"{s_q * h_q}, 1)", tile_scheduler_metadata if isinstance(tile_scheduler_metadata, torch.Tensor)
           else type(tile_scheduler_metadata).__name__)
    _check_same_device(tile_scheduler_metadata, "tile_scheduler_metadata", device)
    _check_int32_vector(num_splits, "num_splits", b + 1)
    _check_same_device(num_splits, "num_splits", device)
    _check(softmax_scale is None or (isinstance(softmax_scale, (int, float)) and math.isfinite(softmax_scale)
                                     and softmax_scale > 0), "softmax_scale", "None or a finite positive float",
           softmax_scale)
    _check(isinstance(causal, bool), "causal", "a bool", causal)

    if _runtime_checks_enabled(check_values):
        _check_values(k_cache, block_table, cache_seqlens)
    return k_cache


def _check_values(k_cache: torch.Tensor, block_table: torch.Tensor, cache_seqlens: torch.Tensor) -> None:
    """Seqlens within what each block_table row holds, and every page they use inside k_cache (one sync)."""
    max_blocks = block_table.shape[1]
    used_pages = (cache_seqlens.clamp(min=0) + BLOCK_SIZE - 1) // BLOCK_SIZE
    in_use = torch.arange(max_blocks, device=block_table.device)[None, :] < used_pages[:, None]
    bad_page = in_use & ((block_table < 0) | (block_table >= k_cache.shape[0]))
    stats = torch.stack([cache_seqlens.min().long(), cache_seqlens.max().long(), bad_page.sum().long()]).tolist()
    min_len, max_len, bad = stats
    _check(min_len >= 0, "cache_seqlens", "non-negative lengths", f"a minimum of {min_len}")
    _check(max_len <= max_blocks * BLOCK_SIZE, "cache_seqlens",
           f"lengths <= block_table.shape[1] * {BLOCK_SIZE} = {max_blocks * BLOCK_SIZE}", f"a maximum of {max_len}")
    _check(bad == 0, "block_table", f"page indices in [0, {k_cache.shape[0]}) for every page a request uses",
           f"{bad} out-of-range entries")


def mla_decode_with_kvcache(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    block_table: torch.Tensor,
    cache_seqlens: torch.Tensor,
    head_dim_v: int,
    tile_scheduler_metadata: torch.Tensor,
    num_splits: torch.Tensor,
    softmax_scale: float | None = None,
    causal: bool = False,
    *,
    q_rope: torch.Tensor | None = None,
    check_values: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paged MLA decode attention; see the module docstring for every argument's contract.

    Returns (out [b, s_q, h_q, 512] in q's dtype, lse float32 [b, h_q, s_q], natural log).
    check_values=False skips the checks that read cache_seqlens and block_table (one host sync), for engines
    that build them consistently; the kernel never reads outside block_table rows or k_cache either way.
    """
    k_cache = _check_decode_inputs(q, q_rope, k_cache, block_table, cache_seqlens, head_dim_v,
                                   tile_scheduler_metadata, num_splits, softmax_scale, causal, check_values)
    _check_hopper(q.device)
    _ensure_kernels(q.device)
    scale = float(softmax_scale) if softmax_scale is not None else HEAD_DIM ** -0.5
    return torch.ops.mla_backend.decode_paged(q, q_rope, k_cache, block_table, cache_seqlens,
                                              tile_scheduler_metadata, num_splits, scale, causal)


flash_mla_with_kvcache = mla_decode_with_kvcache
