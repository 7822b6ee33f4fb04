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
                            Or float8_e4m3fn (vLLM's --kv-cache-dtype fp8 layout, 576 bytes a token) with
                            descale_k; float8_e5m2 is refused. Up to s_q * h_q = 32 Q.K^T runs in fp8: each
                            query row is scaled to e4m3's range and rounded to e4m3 first; above, the cache's
                            values run in q's dtype (exactly: it holds every e4m3 value) and descale_k is applied
                            in fp32 (reference.fp8_cache_operands; the CPU path does the same).
    descale_k (keyword)     with an fp8 k_cache only: float32 [1] (or 0-dim) on q's device, K = descale_k * k_cache;
                            read on the device, so a CUDA graph replays with the tensor's current value.
    descale_q (keyword)     for an fp8 query (FlashMLA's fp8 path): not supported yet, must be None.
    block_table             int32 [b, max_blocks]; entries past a request's last page are never read.
    cache_seqlens           int32 [b]; 0 is allowed (out = 0, lse = +inf).
    tile_scheduler_metadata int32 [num_sm_parts, 8], num_splits int32 [b + 1]: from get_mla_metadata,
                            computed on the GPU without a host sync; valid for every layer of one step. With
                            an fp8 k_cache pass is_fp8_kvcache=True (FlashMLA's keyword): 17-32 query rows of
                            one request then get a plan for half the parts that runs faster there
                            (tile_scheduler.takes_row_halves); a plan made without it is taken too.
    out                     [b, s_q, h_q, 512] in q's dtype.
    lse                     float32 [b, h_q, s_q], natural log; +inf for rows that see no key.
    causal                  with s_q > 1, bottom-right aligned: query i sees keys [0, seqlen - (s_q-1-i)).
    softmax_scale           the caller's (vLLM passes qk_head_dim**-0.5 * mscale**2); default 576**-0.5. A Python
                            float or int: a bool (often `causal` passed by position) is refused.

Every argument is checked here, before anything reaches a kernel: a bad one raises ValueError naming
it. On CPU tensors the ops run the fp32 reference and the Python tile scheduler (for tests and tracing).
"""
from __future__ import annotations

import functools
import math
import os

import torch

from mla_backend import reference, tile_scheduler
from mla_backend.kernel_facts import (  # noqa: F401 - re-exported: the contract's numbers, read as ops.X
    BLOCK_SIZE, HEAD_DIM, HEAD_DIM_V, MAX_BATCH, MAX_H_Q, MAX_S_Q, ROPE_DIM,
    is_hopper, not_hopper,
)

DEFAULT_NUM_SMS = 132       # H100 SXM / H200; only used for CPU tensors
DTYPES = (torch.bfloat16, torch.float16)
FP8_KV_DTYPE = torch.float8_e4m3fn   # vLLM's fp8 / fp8_e4m3 cache (per-tensor scale); e5m2 has no kernel path
OTHER_FP8_DTYPES = (torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz)

_lib = torch.library.Library("mla_backend", "DEF")
_lib.define("tile_scheduler(Tensor cache_seqlens, int num_sm_parts, int split_overhead) -> (Tensor, Tensor)")
_lib.define(
    "decode_paged(Tensor q, Tensor? q_rope, Tensor k_cache, Tensor block_table, Tensor cache_seqlens, "
    "Tensor tile_scheduler_metadata, Tensor num_splits, float softmax_scale, bool causal, Tensor? descale_k=None, "
    "bool row_halves=False) -> (Tensor, Tensor)"
)


@torch.library.impl(_lib, "tile_scheduler", "CPU")
def _tile_scheduler_cpu(cache_seqlens, num_sm_parts, split_overhead):
    return tile_scheduler.tile_scheduler(cache_seqlens, num_sm_parts, split_overhead)


def _check_raw_k_cache(k_cache: torch.Tensor) -> None:
    """The raw op takes the 3-D view `decode` passes it, as the CUDA binding does (which refuses anything else)."""
    if tuple(k_cache.shape[1:]) != (BLOCK_SIZE, HEAD_DIM) or k_cache.dim() != 3:
        raise _bad("k_cache", f"[num_blocks, {BLOCK_SIZE}, {HEAD_DIM}] for the raw op", _describe(k_cache))


@torch.library.impl(_lib, "decode_paged", "CPU")
def _decode_paged_cpu(q, q_rope, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits,
                      softmax_scale, causal, descale_k=None, row_halves=False):
    _check_raw_k_cache(k_cache)
    if q_rope is not None:
        q = torch.cat([q, q_rope], dim=-1)
    dtype = q.dtype
    if descale_k is not None:
        q, k_cache = reference.fp8_cache_operands(q, k_cache, descale_k)
    out, lse = reference.mla_decode_reference(q, k_cache, block_table, cache_seqlens, HEAD_DIM_V, softmax_scale,
                                              causal)
    return out.to(dtype), lse


@torch.library.register_fake("mla_backend::tile_scheduler")
def _tile_scheduler_fake(cache_seqlens, num_sm_parts, split_overhead):
    return (cache_seqlens.new_empty(num_sm_parts, tile_scheduler.SCHED_FIELDS),
            cache_seqlens.new_empty(cache_seqlens.shape[0] + 1))


@torch.library.register_fake("mla_backend::decode_paged")
def _decode_paged_fake(q, q_rope, k_cache, block_table, cache_seqlens, tile_scheduler_metadata, num_splits,
                       softmax_scale, causal, descale_k=None, row_halves=False):
    _check_raw_k_cache(k_cache)
    b, s_q, h_q, _ = q.shape
    return q.new_empty(b, s_q, h_q, HEAD_DIM_V), q.new_empty(b, h_q, s_q, dtype=torch.float32)


@functools.lru_cache(maxsize=None)
def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return DEFAULT_NUM_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def num_sm_parts(num_q_rows: int, device: torch.device, is_fp8_kvcache: bool = False,
                 batch: int | None = None) -> int:
    """Rows of the tile_scheduler_metadata that get_mla_metadata makes for s_q * h_q = num_q_rows on this device
    (with is_fp8_kvcache, for `batch` requests, which it then needs: a plan for row halves has half the parts). What
    engines size buffers by: the most is without is_fp8_kvcache."""
    if is_fp8_kvcache and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 0):
        raise _bad("batch", "the number of requests (an int >= 0) when is_fp8_kvcache is True", _describe(batch))
    row_halves = is_fp8_kvcache and tile_scheduler.takes_row_halves(num_q_rows, batch)
    return tile_scheduler.num_sm_parts(num_q_rows, _num_sms(torch.device(device)), row_halves)


def _ensure_kernels(device: torch.device) -> None:
    if device.type == "cuda":
        from mla_backend._build import load_extension

        load_extension()


# The checks run on every call (once per layer and step in eager mode): each builds its message only when it fails.


def _bad(argument: str, expected: str, got: str) -> ValueError:
    return ValueError(f"{argument}: expected {expected}, got {got}")


def _describe(value: object) -> str:
    """A tensor by dtype, shape and device; anything else by its value and type (numpy.int64 is not an int)."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"{value!r} of type {name}"


def _is_int(value: object) -> bool:
    """A Python int that is not a bool (True == 1 would pass any count or size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise _bad(name, "a torch.Tensor", _describe(t))


def _check_int32_vector(t, name: str, length: int | None = None) -> None:
    _check_tensor(t, name)
    if t.dtype != torch.int32:
        raise _bad(name, "dtype torch.int32", _describe(t))
    if t.dim() != 1 or (length is not None and t.shape[0] != length):
        raise _bad(name, "a 1-D tensor" + ("" if length is None else f" of length {length}"), _describe(t))
    if not t.is_contiguous():
        raise _bad(name, "a contiguous tensor", f"strides {t.stride()}")


def _check_same_device(t: torch.Tensor, name: str, device: torch.device) -> None:
    if t.device != device:
        raise _bad(name, f"a tensor on {device} (the device of q)", _describe(t))


def _check_aligned_start(t: torch.Tensor, name: str) -> None:
    """The kernels read rows in 16-byte pieces from the tensor's first element on."""
    if t.data_ptr() % 16:
        raise _bad(name, "a 16-byte aligned start address (data_ptr() % 16 == 0)",
                   f"address {t.data_ptr():#x}, {t.data_ptr() % 16} bytes past a 16-byte boundary")


def _check_hopper(device: torch.device) -> None:
    if device.type != "cuda":
        return
    capability = torch.cuda.get_device_capability(device)
    if not is_hopper(capability):
        raise RuntimeError(f"mla_backend: {not_hopper(capability, torch.cuda.get_device_name(device))}")


def _runtime_checks_enabled(check_values: bool) -> bool:
    """Checks that read tensor values need a host sync: skipped while capturing or compiling."""
    if not check_values or os.environ.get("MLA_BACKEND_SKIP_VALUE_CHECKS", "0") == "1":
        return False
    if torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def get_mla_metadata(cache_seqlens: torch.Tensor, num_heads_per_head_k: int, num_heads_k: int,
                     is_fp8_kvcache: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The plan for one decode step, made by the tile scheduler and shared by all layers of that step.

    cache_seqlens: int32 [b]; num_heads_per_head_k: s_q * h_q // h_kv; num_heads_k: h_kv (must be 1);
    is_fp8_kvcache: whether the plan is for a float8_e4m3fn k_cache (17-32 rows of one request get a plan for row
    halves, tile_scheduler.takes_row_halves). Returns (tile_scheduler_metadata int32 [num_sm_parts, 8], num_splits
    int32 [b + 1]), where num_sm_parts depends only on (s_q * h_q, b, is_fp8_kvcache, number of SMs), so a CUDA
    graph can capture the call.
    """
    _check_int32_vector(cache_seqlens, "cache_seqlens")
    b = cache_seqlens.shape[0]
    if not 1 <= b <= MAX_BATCH:
        raise _bad("cache_seqlens", f"a batch size in [1, {MAX_BATCH}]", str(b))
    if not (_is_int(num_heads_k) and num_heads_k == 1):
        raise _bad("num_heads_k", "1 as a Python int (MLA has one latent KV head)", _describe(num_heads_k))
    if not (_is_int(num_heads_per_head_k) and 1 <= num_heads_per_head_k <= MAX_S_Q * MAX_H_Q):
        raise _bad("num_heads_per_head_k", f"s_q * h_q as a Python int in [1, {MAX_S_Q * MAX_H_Q}]",
                   _describe(num_heads_per_head_k))
    if not isinstance(is_fp8_kvcache, bool):
        raise _bad("is_fp8_kvcache", "a Python bool", _describe(is_fp8_kvcache))
    _check_hopper(cache_seqlens.device)
    _ensure_kernels(cache_seqlens.device)
    parts = num_sm_parts(num_heads_per_head_k, cache_seqlens.device, is_fp8_kvcache, b)
    return torch.ops.mla_backend.tile_scheduler(cache_seqlens, parts,
                                                tile_scheduler.split_overhead_for(num_heads_per_head_k))


def _check_rows(t: torch.Tensor, name: str, what: str = "rows") -> None:
    """The kernels copy rows in 16-byte pieces: a contiguous last dimension, 16-byte aligned rows."""
    *outer, stride_col = t.stride()
    per_16_bytes = 16 // t.element_size()
    if stride_col != 1 or any(stride % per_16_bytes for stride in outer):
        raise _bad(name, f"a contiguous last dimension and 16-byte aligned {what} (other strides multiples of "
                   f"{per_16_bytes})", f"strides {t.stride()}")
    _check_aligned_start(t, name)


def _check_descale(t, name: str, device: torch.device) -> None:
    """A per-tensor scale as the kernel reads it: one float32 on the device, so that a CUDA graph can hold it."""
    expected = f"a float32 tensor of shape [1] on {device} (the device of q)"
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or t.shape not in ((1,), ()):
        raise _bad(name, f"{expected}, the fp8 cache's per-tensor scale (K = descale_k * k_cache)", _describe(t))
    _check_same_device(t, name, device)


def _check_query_dtype(q: torch.Tensor, k_cache, descale_q) -> None:
    if q.dtype in DTYPES:
        if descale_q is not None:
            raise _bad("descale_q", "None (it goes with an fp8 query, and fp8 queries are not supported yet)",
                       _describe(descale_q))
        return
    if q.dtype == FP8_KV_DTYPE:
        fp8_cache = isinstance(k_cache, torch.Tensor) and k_cache.dtype == FP8_KV_DTYPE
        why = ("an fp8 query with descale_q is not supported yet: pass the query in bfloat16 or float16 with the fp8 "
               "cache and its descale_k" if fp8_cache else "an fp8 query would also need a float8_e4m3fn k_cache")
        raise _bad("q", f"dtype torch.bfloat16 or torch.float16 ({why})", _describe(q))
    raise _bad("q", "dtype torch.bfloat16 or torch.float16", _describe(q))


def _check_cache_dtype(k_cache: torch.Tensor, q: torch.Tensor, descale_k, device: torch.device) -> None:
    """An fp8 cache takes descale_k; a 16-bit one is q's dtype, no descale_k."""
    if k_cache.dtype == FP8_KV_DTYPE:
        _check_descale(descale_k, "descale_k", device)
        return
    if k_cache.dtype in OTHER_FP8_DTYPES:
        raise _bad("k_cache", f"the dtype of q ({q.dtype}) or torch.float8_e4m3fn with descale_k (vLLM's fp8 cache); "
                   f"{k_cache.dtype} caches are not supported", _describe(k_cache))
    if k_cache.dtype != q.dtype:
        raise _bad("k_cache", f"the dtype of q ({q.dtype}) or torch.float8_e4m3fn with descale_k", _describe(k_cache))
    if descale_k is not None:
        raise _bad("descale_k", f"None for a {k_cache.dtype} k_cache (descale_k goes with a float8_e4m3fn cache)",
                   _describe(descale_k))


def _check_decode_inputs(q, q_rope, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                         num_splits, softmax_scale, causal, check_values, descale_q=None,
                         descale_k=None) -> tuple[torch.Tensor, bool]:
    """Validates the contract; returns k_cache as a 3-D [num_blocks, 64, 576] view, and whether the plan was made
    for row halves (its part count says which)."""
    _check_tensor(q, "q")
    _check_query_dtype(q, k_cache, descale_q)
    q_cols = HEAD_DIM if q_rope is None else HEAD_DIM_V
    if q.dim() != 4 or q.shape[-1] != q_cols:
        apart = "" if q_rope is None else " (its RoPE columns are in q_rope)"
        raise _bad("q", f"shape [b, s_q, h_q, {q_cols}]{apart}", _describe(q))
    b, s_q, h_q, _ = q.shape
    if b < 1:
        raise _bad("q", "a batch size >= 1", str(b))
    if not 1 <= s_q <= MAX_S_Q:
        raise _bad("q", f"s_q (dim 1) in [1, {MAX_S_Q}]", str(s_q))
    if not 1 <= h_q <= MAX_H_Q:
        raise _bad("q", f"h_q (dim 2) in [1, {MAX_H_Q}]", str(h_q))
    _check_rows(q, "q")
    device = q.device
    if device.type not in ("cuda", "cpu"):
        raise _bad("q", "a CUDA tensor", _describe(q))
    if q_rope is not None:
        _check_tensor(q_rope, "q_rope")
        if q_rope.dtype != q.dtype:
            raise _bad("q_rope", f"the dtype of q ({q.dtype})", _describe(q_rope))
        if q_rope.shape != (b, s_q, h_q, ROPE_DIM):
            raise _bad("q_rope", f"shape [b={b}, s_q={s_q}, h_q={h_q}, {ROPE_DIM}]", _describe(q_rope))
        _check_rows(q_rope, "q_rope")
        _check_same_device(q_rope, "q_rope", device)

    _check_tensor(k_cache, "k_cache")
    _check_same_device(k_cache, "k_cache", device)
    _check_cache_dtype(k_cache, q, descale_k, device)
    if k_cache.dim() == 4:
        if k_cache.shape[2] != 1:
            raise _bad("k_cache", f"one KV head: shape [num_blocks, {BLOCK_SIZE}, 1, {HEAD_DIM}]", _describe(k_cache))
        k_cache = k_cache.select(2, 0)
    if k_cache.dim() != 3 or k_cache.shape[1] != BLOCK_SIZE or k_cache.shape[2] != HEAD_DIM:
        raise _bad("k_cache", f"shape [num_blocks, {BLOCK_SIZE}, 1, {HEAD_DIM}] or [num_blocks, {BLOCK_SIZE}, "
                   f"{HEAD_DIM}] (block size {BLOCK_SIZE})", _describe(k_cache))
    if k_cache.shape[0] < 1:
        raise _bad("k_cache", "at least one block", _describe(k_cache))
    _check_rows(k_cache, "k_cache", "rows and blocks")

    _check_tensor(block_table, "block_table")
    if block_table.dtype != torch.int32:
        raise _bad("block_table", "dtype torch.int32", _describe(block_table))
    if block_table.dim() != 2 or block_table.shape[0] != b or block_table.shape[1] < 1:
        raise _bad("block_table", f"shape [b={b}, max_blocks >= 1]", _describe(block_table))
    if block_table.stride(1) != 1:
        raise _bad("block_table", "a contiguous last dimension", f"strides {block_table.stride()}")
    _check_same_device(block_table, "block_table", device)

    _check_int32_vector(cache_seqlens, "cache_seqlens", b)
    _check_same_device(cache_seqlens, "cache_seqlens", device)
    if not (_is_int(head_dim_v) and head_dim_v == HEAD_DIM_V):
        raise _bad("head_dim_v", f"{HEAD_DIM_V} as a Python int", _describe(head_dim_v))

    meta, fields = tile_scheduler_metadata, tile_scheduler.SCHED_FIELDS
    parts, halves_parts = _plan_parts(s_q * h_q, k_cache, device)
    if not (isinstance(meta, torch.Tensor) and meta.dtype == torch.int32 and meta.dim() == 2
            and meta.shape[0] in (parts, halves_parts) and meta.shape[1] == fields and meta.is_contiguous()):
        made_by = f"shape ({parts}, {fields}) from get_mla_metadata(cache_seqlens, {s_q * h_q}, 1)"
        if halves_parts != parts:
            made_by += f" or ({halves_parts}, {fields}) from the same with is_fp8_kvcache=True"
        raise _bad("tile_scheduler_metadata", f"a contiguous int32 tensor of {made_by}", _describe(meta))
    _check_same_device(meta, "tile_scheduler_metadata", device)
    _check_int32_vector(num_splits, "num_splits", b + 1)
    _check_same_device(num_splits, "num_splits", device)
    if softmax_scale is not None and not ((_is_int(softmax_scale) or isinstance(softmax_scale, float))
                                          and math.isfinite(softmax_scale) and softmax_scale > 0):
        hint = " (a bool here is usually `causal` passed by position)" if isinstance(softmax_scale, bool) else ""
        raise _bad("softmax_scale", f"None or a finite positive Python float{hint}", _describe(softmax_scale))
    if not isinstance(causal, bool):
        raise _bad("causal", "a Python bool", _describe(causal))

    if _runtime_checks_enabled(check_values):
        _check_values(k_cache, block_table, cache_seqlens, descale_k)
    return k_cache, meta.shape[0] == halves_parts != parts


def _check_values(k_cache: torch.Tensor, block_table: torch.Tensor, cache_seqlens: torch.Tensor,
                  descale_k: torch.Tensor | None = None) -> None:
    """Seqlens within what each block_table row holds, every page they use inside k_cache, and a finite positive
    descale_k (one sync)."""
    max_blocks = block_table.shape[1]
    used_pages = (cache_seqlens.clamp(min=0) + BLOCK_SIZE - 1) // BLOCK_SIZE
    in_use = torch.arange(max_blocks, device=block_table.device)[None, :] < used_pages[:, None]
    bad_page = in_use & ((block_table < 0) | (block_table >= k_cache.shape[0]))
    stats = [cache_seqlens.min().long(), cache_seqlens.max().long(), bad_page.sum().long()]
    if descale_k is not None:
        scale = descale_k.reshape(())
        stats.append((torch.isfinite(scale) & (scale > 0)).long())
    min_len, max_len, bad, *scale_ok = torch.stack(stats).tolist()
    if scale_ok and not scale_ok[0]:
        raise _bad("descale_k", "a finite positive scale", f"{descale_k.reshape(()).item()!r}")
    if min_len < 0:
        raise _bad("cache_seqlens", "non-negative lengths", f"a minimum of {min_len}")
    if max_len > max_blocks * BLOCK_SIZE:
        raise _bad("cache_seqlens", f"lengths <= block_table.shape[1] * {BLOCK_SIZE} = {max_blocks * BLOCK_SIZE}",
                   f"a maximum of {max_len}")
    if bad:
        raise _bad("block_table", f"page indices in [0, {k_cache.shape[0]}) for every page a request uses",
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
    descale_q: torch.Tensor | None = None,
    descale_k: torch.Tensor | None = None,
    check_values: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paged MLA decode attention; see the module docstring for every argument's contract.

    Returns (out [b, s_q, h_q, 512] in q's dtype, lse float32 [b, h_q, s_q], natural log).
    check_values=False skips the checks that read cache_seqlens and block_table (one host sync), for engines
    that build them consistently; the kernel never reads outside block_table rows or k_cache either way.
    """
    k_cache, row_halves = _check_decode_inputs(q, q_rope, k_cache, block_table, cache_seqlens, head_dim_v,
                                               tile_scheduler_metadata, num_splits, softmax_scale, causal,
                                               check_values, descale_q, descale_k)
    _check_hopper(q.device)
    _ensure_kernels(q.device)
    scale = float(softmax_scale) if softmax_scale is not None else HEAD_DIM ** -0.5
    return torch.ops.mla_backend.decode_paged(q, q_rope, k_cache, block_table, cache_seqlens,
                                              tile_scheduler_metadata, num_splits, scale, causal, descale_k,
                                              row_halves)


def _plan_parts(num_q_rows: int, k_cache: torch.Tensor, device: torch.device) -> tuple[int, int]:
    """The part counts of the plans the op takes for this cache: (one CTA a part, row halves); the same twice where
    there are no row halves (a 16-bit cache, other row counts)."""
    parts = num_sm_parts(num_q_rows, device)
    if k_cache.dtype == FP8_KV_DTYPE and tile_scheduler.splits_into_row_halves(num_q_rows):
        return parts, tile_scheduler.num_sm_parts(num_q_rows, _num_sms(device), row_halves=True)
    return parts, parts


flash_mla_with_kvcache = mla_decode_with_kvcache
