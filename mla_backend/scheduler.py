"""Python mirror of the GPU tile scheduler (kernels/mla_metadata.cu), bit-identical on CPU.

The decode kernel runs one persistent CTA per (64-row query tile, SM part). The scheduler cuts the
batch's KV blocks into ``num_sm_parts`` contiguous ranges of (request, block) of near-equal cost,
where a request costs its block count (at least 1) plus ``SPLIT_OVERHEAD`` blocks per piece, so long
requests are split across parts and short ones are packed into one.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

BLOCK_SIZE = 64
ROWS_PER_TILE = 64
SPLIT_OVERHEAD = 5
SCHED_FIELDS = 8
BEGIN_REQ, BEGIN_BLOCK, END_REQ, END_BLOCK, BEGIN_SPLIT = range(5)


def num_sm_parts(num_q_rows: int, num_sms: int) -> int:
    """Parts per query tile so that all CTAs (tiles x parts) fit in one wave."""
    return max(num_sms // math.ceil(num_q_rows / ROWS_PER_TILE), 1)


def tile_scheduler(cache_seqlens: Sequence[int] | torch.Tensor, num_parts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (tile_scheduler_metadata int32 [num_parts, 8], num_splits int32 [b + 1]).

    Entry fields: begin_req, begin_block, end_req (inclusive), end_block (exclusive, of end_req),
    begin_split (split index of begin_req); an empty part has begin_req == b.
    num_splits is the exclusive prefix sum of the number of parts each request is split over.
    """
    seqlens = [int(s) for s in (cache_seqlens.tolist() if isinstance(cache_seqlens, torch.Tensor) else cache_seqlens)]
    b = len(seqlens)
    blocks = [(max(s, 0) + BLOCK_SIZE - 1) // BLOCK_SIZE for s in seqlens]
    splits = [0] * b
    total_cost = sum(max(n, 1) + SPLIT_OVERHEAD for n in blocks)
    payload = (total_cost + num_parts - 1) // num_parts + SPLIT_OVERHEAD
    sched = torch.zeros(num_parts, SCHED_FIELDS, dtype=torch.int32)
    req = block = split = 0
    for part in range(num_parts):
        begin = (req, block, split)
        end_req, end_block = b - 1, 0
        budget = 0x7FFFFFFF if part + 1 == num_parts else payload
        while req < b:
            unit = max(blocks[req] - block, 1)
            if budget - SPLIT_OVERHEAD >= unit:
                budget -= unit + SPLIT_OVERHEAD
                end_req, end_block = req, blocks[req]
                splits[req] = split + 1
                req, block, split = req + 1, 0, 0
            else:
                take = budget - SPLIT_OVERHEAD
                if take > 0:
                    block += take
                    end_req, end_block = req, block
                    split += 1
                break
        sched[part, BEGIN_REQ], sched[part, BEGIN_BLOCK], sched[part, BEGIN_SPLIT] = begin
        sched[part, END_REQ], sched[part, END_BLOCK] = end_req, end_block
    num_splits = torch.zeros(b + 1, dtype=torch.int32)
    num_splits[1:] = torch.tensor(splits, dtype=torch.int32).cumsum(0)
    return sched, num_splits


def part_pieces(sched: torch.Tensor, cache_seqlens: Sequence[int] | torch.Tensor) -> list[list[tuple[int, int, int]]]:
    """Decodes a plan into, per part, its (request, first_block, end_block) pieces, as the kernel walks it."""
    seqlens = [int(s) for s in (cache_seqlens.tolist() if isinstance(cache_seqlens, torch.Tensor) else cache_seqlens)]
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
