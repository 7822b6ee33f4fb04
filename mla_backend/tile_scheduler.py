"""Python mirror of the GPU tile scheduler (kernels/mla_metadata.cu), bit-identical on CPU.

The decode kernel runs one persistent CTA per (query tile, SM part). The tile scheduler lays the batch out on a
cost line: request i takes ``max(blocks_i, 1) + overhead`` units, its overhead units first, then one unit
per KV block (a zero-length request has one unit standing for its empty piece). Part k covers the units
[k * unit, (k + 1) * unit) with ``unit = max(ceil(total / num_parts), overhead + 1)`` and takes the blocks
whose units fall in that range; a range that ends inside a request's overhead does not take that request.
``overhead`` is ``split_overhead`` (``split_overhead_for(s_q * h_q)``: 3 blocks up to 32 query rows, 5
above), lowered below the natural unit size when the batch is so small that a part could otherwise hold
nothing but overhead (b=1: one 4-block part per SM rather than 6-block parts on two thirds of them). So long
requests are split across parts and short ones are packed into one, every part but the trailing empty ones has
work, and each part finds its range alone (a binary search over prefix sums), which is what lets the GPU build
the plan in parallel in a few microseconds.

Whole-request mode: when every request costs about one part's share (all costs within a tenth of the ideal
``ceil(total / num_parts)`` of each other and of it), splitting buys no balance but costs partials and
a combine. Then ``unit = max(ideal, max cost)`` and part k takes, whole, the requests that start in its
range: b128 x 4096 tokens on 132 parts runs 128 unsplit requests (4% faster on the H200 than 132 parts
with nearly every request split in two).

Equal-chunk mode: otherwise, when every request fits in one chunk of ``chunk`` blocks or more and the chunks fit
in the parts, every request is cut into chunks of ``chunk`` blocks (its last one shorter) and each chunk is a
part of its own. ``chunk`` is the shortest length from ``ceil(total blocks / num_parts)`` up whose chunks fit,
and the mode is taken when ``chunk <= unit``: no part holds more blocks than on the cost line, and every part
pays one prologue and one epilogue, where the cost line can give a part the tail of one request and the head of
the next (two of each, the second not on the line). On the H200: b64 x 2048 tokens x 32 query rows 55.1 -> 52.5
us, b16 x 4096 x 128 heads 50.2 -> 47.7, b32 x 1024 x 128 heads 38.2 -> 34.8, unchanged where the two cuts
agree (b1, b8, b32 x 1024 x 16 heads); b64 x 16384 (chunk 128 > unit 126) stays on the cost line.
"""
from __future__ import annotations

import bisect
import math
from typing import Sequence

import torch

from mla_backend.kernel_facts import BLOCK_SIZE, FP8_MAX_ROWS

ROWS_PER_TILE = 64
NARROW_ROWS = 16             # query rows of the swap-AB kernels' tile (kNarrowMaxRows in kernels/mla_params.h)
FP8_ROW_HALVES_MAX_BATCH = 1    # takes_row_halves
SPLIT_OVERHEAD = 5           # KV blocks a split costs (prologue, partial, its share of the combine)
NARROW_SPLIT_OVERHEAD = 3    # ... with at most NARROW_SPLIT_ROWS query rows: a small partial (H200, PERF_NOTES)
NARROW_SPLIT_ROWS = 32
SCHED_FIELDS = 8
BEGIN_REQ, BEGIN_BLOCK, END_REQ, END_BLOCK, BEGIN_SPLIT = range(5)


def num_sm_parts(num_q_rows: int, num_sms: int, row_halves: bool = False) -> int:
    """Parts per query tile so that all CTAs (tiles x parts) fit in one wave; with row_halves (takes_row_halves)
    the tiles are NARROW_ROWS rows: two CTAs a part."""
    return max(num_sms // math.ceil(num_q_rows / (NARROW_ROWS if row_halves else ROWS_PER_TILE)), 1)


def takes_row_halves(num_q_rows: int, batch: int) -> bool:
    """Whether an fp8 cache's plan for `batch` requests of num_q_rows query rows is made for row halves: the 17-32
    rows as two 16-row CTAs a part (the 16-row block split's kernel on each half, both reading the part's blocks)
    over half the parts, instead of one CTA a part running the 64-row fp8 kernel. Against that kernel, when it still
    padded the rows to 64, halves paid for one request only (H200, 32 heads: b1 x 32768 tokens -3.5%) and lost from
    four on (b4 x 4096 +3%, b8 x 8192 and b16 x 4096 +10%, b32 x 1024 +7%, b32 x 4096 and x 8192 +14%, b48 x 2048
    +13%, b64 x 1024 +1%, b64 x 2048 x 2 draft-token rows +7%, b64 x 4096 +10%, b64 x 8192 +11%; kernels/PERF_NOTES.md,
    thirty-seventh session). Against the folded tile (v113) one request still pays: b1 x 32768 tokens 21.3 against
    23.3 us, x 8192 15.2 against 19.2, x 4096 14.3 against 14.8, x 32768 x 2 rows 21.2 against 23.5; only x 65536
    went the other way (29.6 against 28.9; fortieth session). The blocks are known on the device only; the batch
    size stands in for them, as for the fp8 column split (graph-safe: engines capture a graph per batch size)."""
    return splits_into_row_halves(num_q_rows) and batch <= FP8_ROW_HALVES_MAX_BATCH


def splits_into_row_halves(num_q_rows: int) -> bool:
    """17-32 query rows: more than one 16-row tile, within what the fp8 swap-AB kernels take."""
    return NARROW_ROWS < num_q_rows <= FP8_MAX_ROWS


def split_overhead_for(num_q_rows: int) -> int:
    """The split cost in KV blocks for s_q * h_q = num_q_rows: a partial's bytes grow with the rows."""
    return NARROW_SPLIT_OVERHEAD if num_q_rows <= NARROW_SPLIT_ROWS else SPLIT_OVERHEAD


def is_uniform(costs: Sequence[int], ideal_unit: int) -> bool:
    """Whole-request mode: every cost within a tenth of ideal_unit of each other, none above 1.1 x ideal_unit."""
    return 10 * (max(costs) - min(costs)) <= ideal_unit and 10 * max(costs) <= 11 * ideal_unit


def kv_blocks(seqlens: Sequence[int]) -> list[int]:
    """KV blocks (pages) of each request: ceil(seqlen / BLOCK_SIZE), a negative length counting as 0."""
    return [(max(s, 0) + BLOCK_SIZE - 1) // BLOCK_SIZE for s in seqlens]


def _as_list(cache_seqlens: Sequence[int] | torch.Tensor) -> list[int]:
    return [int(s) for s in (cache_seqlens.tolist() if isinstance(cache_seqlens, torch.Tensor) else cache_seqlens)]


def tile_scheduler(cache_seqlens: Sequence[int] | torch.Tensor, num_parts: int,
                   split_overhead: int = SPLIT_OVERHEAD) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (tile_scheduler_metadata int32 [num_parts, 8], num_splits int32 [b + 1]).

    Entry fields: begin_req, begin_block, end_req (inclusive), end_block (exclusive, of end_req),
    begin_split (split index of begin_req); an empty part has begin_req == b, end_req == b - 1.
    num_splits is the exclusive prefix sum of the number of parts each request is split over.
    """
    seqlens = _as_list(cache_seqlens)
    b = len(seqlens)
    blocks = kv_blocks(seqlens)
    blocks_before = [0]                         # prefix sums of max(blocks, 1)
    for n in blocks:
        blocks_before.append(blocks_before[-1] + max(n, 1))
    natural_unit = -(-(blocks_before[b] + b * split_overhead) // num_parts)
    overhead = min(split_overhead, max(natural_unit - 1, 0))
    line = [blocks_before[i] + i * overhead for i in range(b + 1)]   # line[i]: first unit of request i
    ideal_unit = -(-line[b] // num_parts)
    costs = [line[i + 1] - line[i] for i in range(b)]
    if is_uniform(costs, ideal_unit):
        return _whole_request_plan(line, blocks, num_parts, max(ideal_unit, max(costs)))
    unit = max(ideal_unit, overhead + 1)
    chunk = shortest_chunk(blocks, num_parts, longest=unit)   # equal-chunk mode where one fits
    if chunk is not None:
        return equal_chunk_plan(blocks, num_parts, chunk)
    return _split_plan(line, blocks, num_parts, overhead, unit)


def chunks_of(blocks: int, chunk: int) -> int:
    """Pieces of a request of `blocks` KV blocks cut into chunks of `chunk` (a zero-length request: one)."""
    return -(-max(blocks, 1) // chunk)


def shortest_chunk(blocks: Sequence[int], num_parts: int, longest: int | None = None) -> int | None:
    """The shortest chunk length from ceil(sum(max(n, 1)) / num_parts) up to `longest` (default: the longest
    request, where every request is one chunk) whose pieces fit in num_parts parts; None if none does. With
    longest = the cost line's unit, equal-chunk mode's chunk length (None: the mode does not apply)."""
    if len(blocks) > num_parts:
        return None
    sizes = [max(n, 1) for n in blocks]
    lo, hi = -(-sum(sizes) // num_parts), min(max(sizes), longest or max(sizes))
    if lo > hi or sum(chunks_of(n, hi) for n in sizes) > num_parts:
        return None
    while lo < hi:   # the piece count falls as the chunk grows: the shortest chunk that fits
        mid = (lo + hi) // 2
        if sum(chunks_of(n, mid) for n in sizes) <= num_parts:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _empty_part(sched: torch.Tensor, part: int, b: int) -> None:
    sched[part, BEGIN_REQ], sched[part, END_REQ] = b, b - 1


def _whole_request_plan(line, blocks, num_parts, unit):
    """Part k takes, unsplit, the requests that start in [k * unit, (k + 1) * unit)."""
    b, total = len(blocks), line[-1]
    sched = torch.zeros(num_parts, SCHED_FIELDS, dtype=torch.int32)
    for part in range(num_parts):
        lo, hi = part * unit, min((part + 1) * unit, total)
        begin_req = bisect.bisect_left(line, lo, 0, b)    # the first request starting at or after lo
        end_req = bisect.bisect_left(line, hi, 0, b) - 1  # the last request starting before hi
        if lo >= total or begin_req > end_req:
            _empty_part(sched, part, b)
            continue
        sched[part, BEGIN_REQ], sched[part, END_REQ], sched[part, END_BLOCK] = begin_req, end_req, blocks[end_req]
    return sched, torch.arange(b + 1, dtype=torch.int32)


def equal_chunk_plan(blocks: Sequence[int], num_parts: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Request i's chunk k is part num_splits[i] + k: blocks [k * chunk, min((k + 1) * chunk, blocks[i]))."""
    b = len(blocks)
    num_splits = torch.zeros(b + 1, dtype=torch.int32)
    num_splits[1:] = torch.tensor([chunks_of(n, chunk) for n in blocks], dtype=torch.int32).cumsum(0)
    sched = torch.zeros(num_parts, SCHED_FIELDS, dtype=torch.int32)
    for part in range(int(num_splits[b]), num_parts):
        _empty_part(sched, part, b)
    for req, n in enumerate(blocks):
        first_part = int(num_splits[req])
        for k in range(int(num_splits[req + 1]) - first_part):
            sched[first_part + k, :5] = torch.tensor([req, k * chunk, req, min((k + 1) * chunk, n), k])
    return sched, num_splits


def _split_plan(line, blocks, num_parts, overhead, unit):
    """Part k takes the blocks whose units fall in [k * unit, (k + 1) * unit)."""
    b, total = len(blocks), line[-1]
    first_part = [(line[i] + overhead) // unit for i in range(b)]   # the part holding block unit 0
    num_splits = torch.zeros(b + 1, dtype=torch.int32)
    num_splits[1:] = torch.tensor([(line[i + 1] - 1) // unit - first_part[i] + 1 for i in range(b)],
                                  dtype=torch.int32).cumsum(0)
    sched = torch.zeros(num_parts, SCHED_FIELDS, dtype=torch.int32)
    for part in range(num_parts):
        lo = part * unit
        if lo >= total:
            _empty_part(sched, part, b)
            continue
        hi = min(lo + unit, total)
        begin_req = bisect.bisect_right(line, lo) - 1
        end_req = bisect.bisect_right(line, hi - 1) - 1
        end_unit = hi - 1 - line[end_req]
        if end_unit < overhead:                  # the range ends inside end_req's overhead: not taken
            end_req -= 1
            end_block = blocks[end_req]
        else:
            end_block = min(end_unit - overhead + 1, blocks[end_req])
        sched[part, BEGIN_REQ] = begin_req
        sched[part, BEGIN_BLOCK] = max(lo - line[begin_req] - overhead, 0)
        sched[part, END_REQ] = end_req
        sched[part, END_BLOCK] = end_block
        sched[part, BEGIN_SPLIT] = part - first_part[begin_req]
    return sched, num_splits


def part_pieces(sched: torch.Tensor, cache_seqlens: Sequence[int] | torch.Tensor) -> list[list[tuple[int, int, int]]]:
    """Decodes a plan into, per part, its (request, first_block, end_block) pieces, as the kernel walks it."""
    seqlens = _as_list(cache_seqlens)
    pieces = []
    for entry in sched.tolist():
        mine = []
        for req in range(entry[BEGIN_REQ], entry[END_REQ] + 1):
            req_blocks = (max(seqlens[req], 0) + BLOCK_SIZE - 1) // BLOCK_SIZE
            first = entry[BEGIN_BLOCK] if req == entry[BEGIN_REQ] else 0
            last = entry[END_BLOCK] if req == entry[END_REQ] else req_blocks
            mine.append((req, first, last))
        pieces.append(mine)
    return pieces
