"""Properties of the tile scheduler's Python mirror (mla_backend/tile_scheduler.py == kernels/mla_metadata.cu).

The plan splits the batch's (request, KV block) pairs into ``num_parts`` contiguous ranges. What the decode
and combine kernels rely on, and what these tests prove on hand-picked batches and hypothesis-drawn ones:
every block is covered exactly once and in order, zero-length requests appear exactly once as an empty
piece, ``num_splits`` counts the parts each request is spread over, ``begin_split`` indexes into that count,
and the cut is balanced: each part covers at most ``unit = max(ceil(total_cost / num_parts), overhead + 1)``
units of the cost line, every busy part but the last exactly that many; or, in equal-chunk mode, each part is one
chunk of at most ``unit`` blocks, the shortest chunk whose pieces fit.
"""
from __future__ import annotations

import importlib
import math
import random
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mla_backend import _build, kernel_facts
from mla_backend.tile_scheduler import (BEGIN_BLOCK, BEGIN_REQ, BEGIN_SPLIT, BLOCK_SIZE, END_BLOCK, END_REQ,
                                        FP8_ROW_HALVES_MAX_BATCH, NARROW_ROWS, NARROW_SPLIT_OVERHEAD,
                                        ROWS_PER_TILE, SCHED_FIELDS, SPLIT_OVERHEAD, chunks_of, is_uniform,
                                        num_sm_parts, part_pieces, shortest_chunk, split_overhead_for,
                                        takes_row_halves, tile_scheduler)

KERNELS = Path(__file__).resolve().parents[1] / "kernels"


def _blocks(seqlens):
    return [math.ceil(s / BLOCK_SIZE) for s in seqlens]


def _overhead(seqlens, num_parts):
    """The per-request overhead the tile scheduler charges: SPLIT_OVERHEAD, or less when parts would be tiny."""
    natural_unit = math.ceil(sum(max(n, 1) + SPLIT_OVERHEAD for n in _blocks(seqlens)) / num_parts)
    return min(SPLIT_OVERHEAD, max(natural_unit - 1, 0))


def _total_cost(seqlens, num_parts):
    return sum(max(n, 1) + _overhead(seqlens, num_parts) for n in _blocks(seqlens))


def _unit(seqlens, num_parts):
    """Cost-line units per part (see mla_backend/tile_scheduler.py)."""
    return max(math.ceil(_total_cost(seqlens, num_parts) / num_parts), _overhead(seqlens, num_parts) + 1)


def _plan(seqlens, num_parts):
    sched, num_splits = tile_scheduler(seqlens, num_parts)
    return sched, num_splits, part_pieces(sched, seqlens)


# --- property checks (each asserts one property on a plan) ------------------------------------------------


def check_shapes_and_dtypes(seqlens, num_parts, sched, num_splits):
    b = len(seqlens)
    assert sched.dtype == torch.int32 and tuple(sched.shape) == (num_parts, SCHED_FIELDS)
    assert num_splits.dtype == torch.int32 and tuple(num_splits.shape) == (b + 1,)
    assert sched.is_contiguous() and num_splits.is_contiguous()
    assert (sched[:, 5:] == 0).all(), "reserved fields must be zero"


def check_every_block_covered_exactly_once(seqlens, pieces):
    """Vectorized: a difference array over the batch's global block index sums to exactly 1 everywhere."""
    blocks = _blocks(seqlens)
    offsets = [0]
    for n in blocks:
        offsets.append(offsets[-1] + n)
    total = offsets[-1]
    starts, ends = [], []
    empty_pieces = [0] * len(seqlens)
    for part in pieces:
        for req, first, last in part:
            assert 0 <= req < len(seqlens)
            assert 0 <= first <= last <= blocks[req], f"piece {(req, first, last)} outside request {req}'s blocks"
            if blocks[req] == 0:
                assert first == last == 0, f"zero-length request {req} piece {(req, first, last)}"
                empty_pieces[req] += 1
            else:
                assert last > first, f"empty piece {(req, first, last)} of a non-empty request"
                starts.append(offsets[req] + first)
                ends.append(offsets[req] + last)
    diff = torch.zeros(total + 1, dtype=torch.int64)
    diff.index_add_(0, torch.tensor(starts, dtype=torch.int64), torch.ones(len(starts), dtype=torch.int64))
    diff.index_add_(0, torch.tensor(ends, dtype=torch.int64), torch.ones(len(ends), dtype=torch.int64), alpha=-1)
    coverage = diff.cumsum(0)[:total]
    if total:
        bad = (coverage != 1).nonzero().flatten()
        assert bad.numel() == 0, f"global block {bad[0].item()} covered {coverage[bad[0]].item()} times"
    for req, n in enumerate(blocks):
        if n == 0:
            assert empty_pieces[req] == 1, f"zero-length request {req} appears {empty_pieces[req]} times"


def check_parts_walk_the_batch_in_order(seqlens, pieces):
    """Concatenating the parts' pieces walks (request, block) front to back with no gap and no overlap."""
    blocks = _blocks(seqlens)
    req, block = 0, 0
    for p, part in enumerate(pieces):
        for r, first, last in part:
            assert (r, first) == (req, block), f"part {p}: piece {(r, first, last)} but the walk is at {(req, block)}"
            block = last
            if block == blocks[req]:
                req, block = req + 1, 0
    assert (req, block) == (len(seqlens), 0), "the plan stops before the end of the batch"


def check_num_splits_counts_parts_per_request(seqlens, num_parts, num_splits, pieces):
    b = len(seqlens)
    ns = num_splits.tolist()
    assert ns[0] == 0
    assert all(x <= y for x, y in zip(ns, ns[1:])), f"num_splits not non-decreasing: {ns}"
    parts_of = [0] * b
    for part in pieces:
        reqs = [r for r, _, _ in part]
        assert len(reqs) == len(set(reqs)), "a request appears twice in one part"
        for r in reqs:
            parts_of[r] += 1
    for r in range(b):
        assert ns[r + 1] - ns[r] == parts_of[r], f"request {r}: num_splits says {ns[r + 1] - ns[r]}, " \
                                                  f"{parts_of[r]} parts hold it"
    # Each extra split is one part ending mid-request, and the last part never does.
    assert ns[b] <= b + num_parts - 1
    assert ns[b] <= b + num_parts


def check_begin_split_counts_earlier_parts(seqlens, sched, pieces):
    b = len(seqlens)
    seen = [0] * b
    for p, part in enumerate(pieces):
        if part:
            begin_req = sched[p, BEGIN_REQ].item()
            assert part[0][0] == begin_req
            begin_split = sched[p, BEGIN_SPLIT].item()
            assert begin_split == seen[begin_req], \
                f"part {p}: begin_split {begin_split}, {seen[begin_req]} earlier parts hold {begin_req}"
            assert sched[p, BEGIN_BLOCK].item() == part[0][1]
        for r, _, _ in part:
            seen[r] += 1


def check_zero_length_requests_never_split(seqlens, num_splits):
    ns = num_splits.tolist()
    for r, s in enumerate(seqlens):
        if s == 0:
            assert ns[r + 1] - ns[r] == 1, f"zero-length request {r} split {ns[r + 1] - ns[r]} ways"


def check_empty_parts_only_at_the_end(seqlens, sched, pieces):
    b = len(seqlens)
    seen_empty = False
    for p, part in enumerate(pieces):
        if not part:
            seen_empty = True
            assert sched[p, BEGIN_REQ].item() == b, f"empty part {p} has begin_req {sched[p, BEGIN_REQ].item()} != b"
        else:
            assert not seen_empty, f"part {p} has work after an empty part (work must be front-loaded)"
            assert sched[p, BEGIN_REQ].item() < b


def check_parts_are_balanced(seqlens, num_parts, pieces):
    """The cost line is cut into ranges of ``unit`` units, a request's overhead units before its blocks.

    Split mode: a part reads at most ``unit`` blocks (a zero-length request's empty piece counts as one), and
    its blocks plus the overheads of the requests it starts fit in ``unit`` + one overhead.
    Whole-request mode (uniform costs only): a part holds the requests starting in its range, so at most
    ``unit`` + one request's cost, and every request is one piece.
    Split mode: ceil(total / unit) parts are busy, so no part idles while another holds two parts' worth.
    Whole-request mode: one busy part per range in which some request starts (requests cheaper than a unit share
    a part: b=9 requests of 6-7 units on 6 parts of 10 units fill 5 of them).
    Equal-chunk mode (b <= num_parts): every part one piece of at most ``chunk <= unit`` blocks, and no shorter
    chunk's pieces fit in the parts.
    """
    overhead = _overhead(seqlens, num_parts)
    costs = [max(n, 1) + overhead for n in _blocks(seqlens)]
    ideal = math.ceil(sum(costs) / num_parts)
    whole = is_uniform(costs, ideal)
    unit = max(ideal, max(costs)) if whole else _unit(seqlens, num_parts)
    busy = [part for part in pieces if part]
    chunk = None if whole else shortest_chunk(_blocks(seqlens), num_parts, longest=unit)
    if chunk is not None:
        sizes = [max(n, 1) for n in _blocks(seqlens)]
        assert chunk <= unit and len(seqlens) <= num_parts
        assert chunk == math.ceil(sum(sizes) / num_parts) or sum(chunks_of(n, chunk - 1) for n in sizes) > num_parts
        assert len(busy) == sum(chunks_of(n, chunk) for n in sizes) <= num_parts
        assert all(len(part) == 1 and part[0][2] - part[0][1] <= chunk for part in busy), "a part is not one chunk"
        return
    if whole:
        starts = [sum(costs[:i]) for i in range(len(costs))]
        assert len(busy) == len({start // unit for start in starts}), "busy parts != ranges where a request starts"
    else:
        assert len(busy) == min(num_parts, math.ceil(sum(costs) / unit)), "busy parts != ceil(total / unit)"
    for p, part in enumerate(busy):
        if whole:
            assert all(first == 0 for _, first, _ in part), f"part {p} splits a request in whole-request mode"
            load = sum(costs[req] for req, _, _ in part)
            assert load <= unit + max(costs), f"part {p} costs {load} > unit {unit} + a request"
            continue
        reads = sum(max(last - first, 1 if first == last == 0 else 0) for _, first, last in part)
        starts = sum(overhead for _, first, _ in part if first == 0)
        assert reads <= unit, f"part {p} reads {reads} blocks > unit {unit}"
        assert reads + starts <= unit + overhead, f"part {p} costs {reads + starts} > unit {unit} + overhead"


def check_all_properties(seqlens, num_parts):
    sched, num_splits, pieces = _plan(seqlens, num_parts)
    check_shapes_and_dtypes(seqlens, num_parts, sched, num_splits)
    check_every_block_covered_exactly_once(seqlens, pieces)
    check_parts_walk_the_batch_in_order(seqlens, pieces)
    check_num_splits_counts_parts_per_request(seqlens, num_parts, num_splits, pieces)
    check_begin_split_counts_earlier_parts(seqlens, sched, pieces)
    check_zero_length_requests_never_split(seqlens, num_splits)
    check_empty_parts_only_at_the_end(seqlens, sched, pieces)
    check_parts_are_balanced(seqlens, num_parts, pieces)
    return sched, num_splits, pieces


# --- hand-picked batches --------------------------------------------------------------------------------

_rng = random.Random(1234)

CASES = {
    "b1_long": ([131072], 132),
    "b1_long_one_part": ([131072], 1),
    "b1_one_token": ([1], 132),
    "b1_zero": ([0], 132),
    "many_short": ([1, 20, 63, 64, 65] * 40, 132),
    "all_zero": ([0] * 50, 16),
    "all_zero_more_parts": ([0] * 3, 4),
    "mixed_zeros": ([0, 4096, 0, 0, 65, 0, 140, 0, 1, 0] * 5, 78),
    "zeros_around_long": ([0, 0, 100000, 0, 0], 33),
    "b_gt_num_parts": ([1024] * 300, 66),
    "b_gt_num_parts_varlen": ([_rng.randint(0, 2048) for _ in range(500)], 33),
    "num_parts_1": ([1, 0, 4096, 65, 0, 7], 1),
    "num_parts_2_split": ([640], 2),
    "b4096_short": ([_rng.randint(1, 256) for _ in range(4096)], 132),
    "b4096_varlen": ([_rng.randint(0, 8192) for _ in range(4096)], 132),
    "b4096_zero": ([0] * 4096, 132),
    "b4096_one_part": ([_rng.randint(0, 1024) for _ in range(4096)], 1),
    "b132_s8192": ([8192] * 132, 66),
    "exact_block_multiples": ([64, 128, 192, 256] * 8, 7),
}


@pytest.mark.parametrize("seqlens,num_parts", list(CASES.values()), ids=list(CASES))
def test_plan_properties_on_hand_picked_batches(seqlens, num_parts):
    check_all_properties(seqlens, num_parts)


@given(seqlens=st.lists(st.integers(0, 40000), min_size=1, max_size=300), num_parts=st.integers(1, 160))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_plan_properties_hold_for_random_batches(seqlens, num_parts):
    check_all_properties(seqlens, num_parts)


@given(seqlens=st.lists(st.sampled_from([0, 1, 63, 64, 65, 128, 129]), min_size=1, max_size=40),
       num_parts=st.integers(1, 64))
@example(seqlens=[0] * 8 + [65], num_parts=6)  # whole-request mode with requests smaller than a part
@settings(max_examples=100, deadline=None)
def test_plan_properties_hold_for_short_and_zero_length_batches(seqlens, num_parts):
    check_all_properties(seqlens, num_parts)


# --- individual properties, named -----------------------------------------------------------------------


def test_long_single_request_is_cut_into_equal_chunks():
    """b=1, 2048 blocks, 132 parts: the cost line's unit is 16 (2053 units), and 16-block chunks fit: 128 parts
    of 16 blocks, within one block of the ideal 2048 / 132 = 15.5 (the cost line: 11, 127 x 16 and 5)."""
    seqlens, num_parts = [131072], 132
    _, num_splits, pieces = check_all_properties(seqlens, num_parts)
    busy = [part for part in pieces if part]
    assert [part[0][2] - part[0][1] for part in busy] == [16] * 128
    assert num_splits.tolist() == [0, 128]


def test_long_requests_that_fit_equal_chunks_get_one_piece_a_part():
    """b64 x 2048 tokens on 132 parts (32 query rows): the cost line's unit is 17 units, so a part would hold
    the tail of one request and the head of the next (two prologues, two partials); equal chunks of 16 blocks
    give 128 parts one piece each (H200: 55.1 -> 52.5 us)."""
    sched, num_splits, pieces = check_all_properties([2048] * 64, 132)
    busy = [part for part in pieces if part]
    assert busy == [[(r, k * 16, k * 16 + 16)] for r in range(64) for k in range(2)]
    assert num_splits.tolist() == list(range(0, 129, 2))
    assert sched[:128, BEGIN_SPLIT].tolist() == [0, 1] * 64 and (sched[128:, BEGIN_REQ] == 64).all()


def test_equal_chunks_are_not_taken_where_they_exceed_the_cost_lines_unit():
    """b64 x 16384 tokens: 128-block chunks (2 a request) against a unit of 126: the cost line keeps its 132
    parts. A long request among many one-block ones: chunks would waste parts on the short ones."""
    assert shortest_chunk([256] * 64, 132, longest=126) is None
    _, num_splits, _ = check_all_properties([16384] * 64, 132)
    assert num_splits[-1].item() > 128
    assert shortest_chunk([512] + [1] * 63, 132, longest=6) is None


def test_zero_length_request_appears_once_as_empty_piece():
    seqlens = [0, 500, 0, 0, 3000, 0]
    _, _, pieces = check_all_properties(seqlens, 9)
    for r in (0, 2, 3, 5):
        holders = [p for p, part in enumerate(pieces) for (req, f, l) in part if req == r]
        assert len(holders) == 1
        assert (r, 0, 0) in pieces[holders[0]]


def test_b1_long_context_keeps_every_sm_busy():
    """b=1, 512 blocks, 132 parts: the natural unit is ceil(517 / 132) = 4, so the overhead drops to 3 and
    128 parts read 4 blocks each, one equal chunk a part (with the full overhead of 5, unit 6 would leave 46 SMs
    idle)."""
    _, num_splits, pieces = check_all_properties([32768], 132)
    busy = [part for part in pieces if part]
    assert len(busy) == 128 and max(part[0][2] - part[0][1] for part in busy) == 4
    assert num_splits.tolist() == [0, 128]


def test_uniform_batch_is_not_split():
    """b128 x 4096 tokens on 132 parts: every request costs 69 units and the ideal part 67, so splitting buys
    nothing; one request per part, no combine."""
    sched, num_splits, pieces = check_all_properties([4096] * 128, 132)
    assert num_splits.tolist() == list(range(129))
    assert [part for part in pieces if part] == [[(r, 0, 64)] for r in range(128)]
    # Two per part when the parts are half as many (h_q = 128: 66 parts), still unsplit.
    _, num_splits, pieces = check_all_properties([4096] * 128, 66)
    assert num_splits.tolist() == list(range(129)) and max(len(part) for part in pieces) == 2


def test_varied_lengths_are_split_for_balance():
    _, num_splits, _ = check_all_properties([4096, 8192] * 64, 132)
    assert num_splits[-1].item() > 128


def test_all_zero_batch_leaves_later_parts_empty_with_begin_req_b():
    seqlens = [0] * 3
    sched, num_splits, pieces = check_all_properties(seqlens, 4)
    # total 3 * 6 = 18, unit = max(ceil(18 / 4), 6) = 6: one zero-length request per part.
    assert [len(p) for p in pieces] == [1, 1, 1, 0]
    assert num_splits.tolist() == [0, 1, 2, 3]
    assert sched[-1, BEGIN_REQ].item() == 3


def test_exact_plan_of_hand_computed_batches():
    """Pins the cut to values worked out by hand, so the GPU mirror has a fixed target."""
    # One 10-block request over 2 parts: total 15, unit 8; equal chunks of 5 blocks fit, 5 <= 8.
    sched, num_splits = tile_scheduler([640], 2)
    assert sched[:, :5].tolist() == [[0, 0, 0, 5, 0], [0, 5, 0, 10, 1]]
    assert num_splits.tolist() == [0, 2]
    # One 10-block request over 3 parts: the overhead drops to 4 (natural unit 5), unit 5; the shortest chunk
    # whose pieces fit is ceil(10 / 3) = 4: 4, 4 and 2 blocks.
    sched, num_splits = tile_scheduler([640], 3)
    assert sched[:, :5].tolist() == [[0, 0, 0, 4, 0], [0, 4, 0, 8, 1], [0, 8, 0, 10, 2]]
    # Requests of 3 and 10 blocks over 3 parts: unit 8, chunk ceil(13 / 3) = 5 (1 + 2 pieces).
    sched, num_splits = tile_scheduler([192, 640], 3)
    assert sched[:, :5].tolist() == [[0, 0, 0, 3, 0], [1, 0, 1, 5, 0], [1, 5, 1, 10, 1]]
    assert num_splits.tolist() == [0, 1, 3]
    # Three zero-length requests over 4 parts: unit 6, one request (5 overhead units + its empty piece) each.
    sched, num_splits = tile_scheduler([0, 0, 0], 4)
    assert sched[:, :5].tolist() == [[0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [2, 0, 2, 0, 0], [3, 0, 2, 0, 0]]
    assert num_splits.tolist() == [0, 1, 2, 3]
    # [1, 130, 0] over 2 parts: blocks [1, 3, 0], line [0, 6, 14, 20], unit 10. Part 0 = units 0-9: request 0
    # and units 6-9 of request 1, all overhead, so not taken. Part 1 = units 10-19: request 1 from units 11-13
    # (blocks 0-2) and request 2's empty piece at unit 19.
    sched, num_splits = tile_scheduler([1, 130, 0], 2)
    assert sched[:, :5].tolist() == [[0, 0, 0, 1, 0], [1, 0, 2, 0, 0]]
    assert num_splits.tolist() == [0, 1, 2, 3]


def test_tensor_and_list_seqlens_give_the_same_plan():
    seqlens = [0, 1, 64, 65, 4096, 77, 0, 12345]
    a = tile_scheduler(seqlens, 13)
    b = tile_scheduler(torch.tensor(seqlens, dtype=torch.int32), 13)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_plan_depends_only_on_block_counts():
    """Lengths inside the same number of 64-token blocks cost the same, so they get the same plan."""
    a = tile_scheduler([1, 65, 129, 0], 3)
    b = tile_scheduler([64, 128, 192, 0], 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_output_shapes_depend_only_on_b_and_num_parts():
    """Fixed shapes are what lets a CUDA graph capture get_mla_metadata once and replay it."""
    for seqlens in ([0] * 7, [1] * 7, [40000] * 7, [5, 0, 99999, 3, 64, 1, 2]):
        sched, num_splits = tile_scheduler(seqlens, 11)
        assert tuple(sched.shape) == (11, SCHED_FIELDS) and tuple(num_splits.shape) == (8,)


@pytest.mark.parametrize("rows,num_sms,expected", [
    (16, 132, 132), (1, 132, 132), (64, 132, 132), (65, 132, 66), (128, 132, 66), (256, 132, 33),
    (2048, 132, 4), (16 * 128, 78, 2), (2048, 16, 1), (1, 1, 1),
])
def test_num_sm_parts_fills_one_wave(rows, num_sms, expected):
    assert num_sm_parts(rows, num_sms) == expected
    assert num_sm_parts(rows, num_sms) == max(num_sms // math.ceil(rows / 64), 1)


@pytest.mark.parametrize("rows,num_sms,expected", [(17, 132, 66), (32, 132, 66), (24, 78, 39), (32, 1, 1)])
def test_row_halves_plans_take_half_the_parts(rows, num_sms, expected):
    """Two 16-row CTAs a part: the plan for row halves has half the parts, so both CTAs still fit in one wave."""
    assert num_sm_parts(rows, num_sms, row_halves=True) == expected
    assert num_sm_parts(rows, num_sms, row_halves=False) == num_sms


def test_row_halves_are_taken_for_17_to_32_rows_of_one_request():
    taken = [(rows, b) for rows in (1, 16, 17, 32, 33, 64) for b in (1, 2, 64, 128) if takes_row_halves(rows, b)]
    assert taken == [(17, 1), (32, 1)]
    assert FP8_ROW_HALVES_MAX_BATCH == 1


def const(name, file="mla_params.h"):
    """The value of `constexpr int name = N;` (or `= A / B;`) in kernels/<file>."""
    match = re.search(rf"constexpr int {name} = (\d+)(?: / (\d+))?;", (KERNELS / file).read_text())
    assert match, f"{name} not found in {file}"
    return int(match.group(1)) // int(match.group(2) or 1)


def test_kernel_facts_match_the_cuda_sources_and_the_build():
    """The Python side's one copy of the kernel's numbers (mla_backend/kernel_facts.py) is the kernel's."""
    assert const("kBlockSize") == kernel_facts.BLOCK_SIZE
    assert const("kHeadDim") == kernel_facts.HEAD_DIM and const("kHeadDimV") == kernel_facts.HEAD_DIM_V
    assert kernel_facts.ROPE_DIM == kernel_facts.HEAD_DIM - kernel_facts.HEAD_DIM_V == 64
    assert const("kSubTiles", "mla_wgmma.cuh") * 64 == kernel_facts.HEAD_DIM  # written there as 576 / 64
    assert const("kFp8MaxRows") == kernel_facts.FP8_MAX_ROWS   # the rows that row halves take
    # row halves: two 16-row CTAs of the fp8 swap-AB kernel cover every row count they are planned for
    assert 2 * const("kCols", "mla_fp8_stages.cuh") == kernel_facts.FP8_MAX_ROWS
    # the fp8 GPU tests' grid (b = 1, 2, 6, 64 and 80) runs both 16-row fp8 kernels (column split up to this batch)
    assert 1 <= const("kFp8ColumnSplitMaxBatch") < 2
    assert f"arch=compute_{kernel_facts.ARCH[3:]},code={kernel_facts.ARCH}" in _build.nvcc_flags()
    assert kernel_facts.ARCH == f"sm_{kernel_facts.HOPPER_MAJOR}0a"
    assert BLOCK_SIZE is kernel_facts.BLOCK_SIZE


def test_split_overhead_is_smaller_for_narrow_queries():
    """A split's partial grows with the query rows: 3 blocks up to 32 rows (s_q * h_q), 5 above."""
    assert [split_overhead_for(rows) for rows in (1, 16, 32, 33, 64, 128, 256)] == [3, 3, 3, 5, 5, 5, 5]
    assert NARROW_SPLIT_OVERHEAD < SPLIT_OVERHEAD


def test_the_op_uses_the_split_overhead_it_is_given():
    importlib.import_module("mla_backend.ops")   # registers torch.ops.mla_backend

    seqlens = torch.tensor([4096] * 8 + [300] * 140, dtype=torch.int32)   # b > parts: the cost line
    for overhead in (3, 5):
        meta, splits = torch.ops.mla_backend.tile_scheduler(seqlens, 132, overhead)
        want_meta, want_splits = tile_scheduler(seqlens, 132, overhead)
        assert torch.equal(meta, want_meta) and torch.equal(splits, want_splits)
    assert not torch.equal(tile_scheduler(seqlens, 132, 3)[0], tile_scheduler(seqlens, 132, 5)[0])


def test_python_mirror_constants_match_the_cuda_header():
    """The mirror is only bit-identical if it uses the same constants and field order as the kernel."""
    header = (KERNELS / "mla_params.h").read_text()
    assert const("kBlockSize") == BLOCK_SIZE
    assert const("kRowsPerTile") == ROWS_PER_TILE
    assert const("kNarrowMaxRows") == NARROW_ROWS == const("kCols", "mla_fp8_stages.cuh")   # a row half's rows
    assert const("kSchedFields") == SCHED_FIELDS
    for name, value in (("kBeginReq", BEGIN_REQ), ("kBeginBlock", BEGIN_BLOCK), ("kEndReq", END_REQ),
                        ("kEndBlock", END_BLOCK), ("kBeginSplit", BEGIN_SPLIT)):
        match = re.search(rf"{name} = (\d+),", header)
        assert match and int(match.group(1)) == value, name
