"""Properties of the tile scheduler's Python mirror (mla_backend/scheduler.py == kernels/mla_metadata.cu).

The plan splits the batch's (request, KV block) pairs into ``num_parts`` contiguous ranges. What the decode
and combine kernels rely on, and what these tests prove on hand-picked batches and hypothesis-drawn ones:
every block is covered exactly once and in order, zero-length requests appear exactly once as an empty
piece, ``num_splits`` counts the parts each request is spread over, ``begin_split`` indexes into that count,
and the greedy cut is balanced: no part costs more than ``payload = ceil(total_cost / num_parts) + 5``.
"""
from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mla_backend import scheduler
from mla_backend.scheduler import (BEGIN_BLOCK, BEGIN_REQ, BEGIN_SPLIT, BLOCK_SIZE, END_BLOCK, END_REQ,
                                   SCHED_FIELDS, SPLIT_OVERHEAD, num_sm_parts, part_pieces, tile_scheduler)

KERNELS = Path(__file__).resolve().parents[1] / "kernels"


def _blocks(seqlens):
    return [math.ceil(s / BLOCK_SIZE) for s in seqlens]


def _total_cost(seqlens):
    return sum(max(n, 1) + SPLIT_OVERHEAD for n in _blocks(seqlens))


def _payload(seqlens, num_parts):
    return math.ceil(_total_cost(seqlens) / num_parts) + SPLIT_OVERHEAD


def _piece_cost(first, last):
    """Cost of one piece in the scheduler's model: its blocks (at least 1) plus the per-split overhead."""
    return max(last - first, 1) + SPLIT_OVERHEAD


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
    """The bound the greedy cut implies (derived from tile_scheduler / get_metadata_kernel):

    * a non-last part spends at most ``payload`` (its budget); when it ends mid-request it spends exactly
      ``payload`` (the partial piece takes the whole remaining budget);
    * a non-last part followed by a non-empty part stopped because its leftover budget could not pay the
      overhead plus one block, so it spent at least ``payload - SPLIT_OVERHEAD``;
    * hence the last part (unbounded budget) gets at most ``T - (n-1) * ceil(T/n) <= payload - SPLIT_OVERHEAD``,
      where T is the total cost with one piece per request and n = num_parts.
    """
    blocks = _blocks(seqlens)
    payload = _payload(seqlens, num_parts)
    costs = [sum(_piece_cost(first, last) for _, first, last in part) for part in pieces]
    for p, part in enumerate(pieces):
        last_part = p + 1 == num_parts
        if last_part:
            assert costs[p] <= payload - SPLIT_OVERHEAD, f"last part costs {costs[p]} > {payload - SPLIT_OVERHEAD}"
            continue
        assert costs[p] <= payload, f"part {p} costs {costs[p]} > payload {payload}"
        if part and part[-1][2] < blocks[part[-1][0]]:
            assert costs[p] == payload, f"part {p} ends mid-request but costs {costs[p]} != payload {payload}"
        if pieces[p + 1]:
            assert costs[p] >= payload - SPLIT_OVERHEAD, f"part {p} costs {costs[p]} < {payload - SPLIT_OVERHEAD}" \
                                                         " yet work was left for later parts"
    assert max(costs) <= payload


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
@settings(max_examples=100, deadline=None)
def test_plan_properties_hold_for_short_and_zero_length_batches(seqlens, num_parts):
    check_all_properties(seqlens, num_parts)


# --- individual properties, named -----------------------------------------------------------------------


def test_long_single_request_is_split_into_payload_sized_pieces():
    """b=1, 2048 blocks, 132 parts: T = 2053, payload = 16 + 5, so every busy part reads 16 blocks.

    That keeps 128 parts busy and leaves 4 empty, yet the slowest part (21) is already the best any cut can
    do: 2048 blocks + 132 overheads over 132 parts average 20.5.
    """
    seqlens, num_parts = [131072], 132
    _, num_splits, pieces = check_all_properties(seqlens, num_parts)
    busy = [part for part in pieces if part]
    assert len(busy) == 128 and all(part[0][2] - part[0][1] == 16 for part in busy)
    assert num_splits.tolist() == [0, 128]
    max_cost = max(_piece_cost(f, l) for part in busy for _, f, l in part)
    assert max_cost == math.ceil((2048 + SPLIT_OVERHEAD * num_parts) / num_parts)


def test_zero_length_request_appears_once_as_empty_piece():
    seqlens = [0, 500, 0, 0, 3000, 0]
    _, _, pieces = check_all_properties(seqlens, 9)
    for r in (0, 2, 3, 5):
        holders = [p for p, part in enumerate(pieces) for (req, f, l) in part if req == r]
        assert len(holders) == 1
        assert (r, 0, 0) in pieces[holders[0]]


def test_all_zero_batch_leaves_later_parts_empty_with_begin_req_b():
    seqlens = [0] * 3
    sched, num_splits, pieces = check_all_properties(seqlens, 4)
    # T = 3 * 6 = 18, payload = ceil(18 / 4) + 5 = 10: two zero-length requests never fit one part.
    assert [len(p) for p in pieces] == [1, 1, 1, 0]
    assert num_splits.tolist() == [0, 1, 2, 3]
    assert sched[-1, BEGIN_REQ].item() == 3


def test_exact_plan_of_hand_computed_batches():
    """Pins the greedy cut to values worked out by hand, so the GPU mirror has a fixed target."""
    # One 10-block request over 2 parts: T = 15, payload = 8 + 5 = 13, part 0 takes 13 - 5 = 8 blocks.
    sched, num_splits = tile_scheduler([640], 2)
    assert sched[:, :5].tolist() == [[0, 0, 0, 8, 0], [0, 8, 0, 10, 1]]
    assert num_splits.tolist() == [0, 2]
    # Three zero-length requests over 4 parts: T = 18, payload = 10; each part fits one (6) but not two (12).
    sched, num_splits = tile_scheduler([0, 0, 0], 4)
    assert sched[:, :5].tolist() == [[0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [2, 0, 2, 0, 0], [3, 0, 2, 0, 0]]
    assert num_splits.tolist() == [0, 1, 2, 3]
    # [1, 130, 0] over 2 parts: blocks [1, 3, 0], T = 6 + 8 + 6 = 20, payload = 15.
    # Part 0: req 0 costs 6 (budget 9 left), req 1 needs 3 + 5 = 8 (budget 1 left), req 2 needs 6 -> stop.
    sched, num_splits = tile_scheduler([1, 130, 0], 2)
    assert sched[:, :5].tolist() == [[0, 0, 1, 3, 0], [2, 0, 2, 0, 0]]
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


def test_python_mirror_constants_match_the_cuda_header():
    """The mirror is only bit-identical if it uses the same constants and field order as the kernel."""
    header = (KERNELS / "mla_params.h").read_text()

    def const(name):
        match = re.search(rf"constexpr int {name} = (\d+);", header)
        assert match, f"{name} not found in mla_params.h"
        return int(match.group(1))

    assert const("kBlockSize") == scheduler.BLOCK_SIZE
    assert const("kRowsPerTile") == scheduler.ROWS_PER_TILE
    assert const("kSplitOverhead") == scheduler.SPLIT_OVERHEAD
    assert const("kSchedFields") == scheduler.SCHED_FIELDS
    for name, value in (("kBeginReq", BEGIN_REQ), ("kBeginBlock", BEGIN_BLOCK), ("kEndReq", END_REQ),
                        ("kEndBlock", END_BLOCK), ("kBeginSplit", BEGIN_SPLIT)):
        match = re.search(rf"{name} = (\d+),", header)
        assert match and int(match.group(1)) == value, name
