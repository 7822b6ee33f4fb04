"""SGLang's req_to_token rows -> our block table (mla_backend/sglang/pages.py), on CPU and without SGLang: decode
through the derived table reads exactly each request's tokens, for SGLang page sizes 64 and 128, randomly
placed pages, stale row tails and NaN in every slot no request owns."""
from __future__ import annotations

import math

import pytest
import torch

from mla_backend import ops, reference
from mla_backend.sglang import pages

HEAD_DIM = ops.HEAD_DIM


def sglang_pool(seq_lens: list[int], page_size: int, max_context_len: int, pool_rows: int, seed: int):
    """A KV pool laid out as SGLang's paged allocator leaves it: returns (kv [slots, 576] with NaN in unowned
    slots, req_to_token int32 [pool_rows, max_context_len], the request rows used)."""
    g = torch.Generator().manual_seed(seed)
    pages_needed = [math.ceil(n / page_size) for n in seq_lens]
    num_pages = sum(pages_needed) + 3
    order = torch.randperm(num_pages, generator=g).tolist()
    kv = torch.full((num_pages * page_size, HEAD_DIM), float("nan"))
    # Stale slots from earlier requests: valid-looking but owned by nobody now.
    req_to_token = torch.randint(0, num_pages * page_size, (pool_rows, max_context_len), generator=g,
                                 dtype=torch.int32)
    rows = torch.randperm(pool_rows, generator=g)[: len(seq_lens)]
    for row, n, k in zip(rows.tolist(), seq_lens, pages_needed):
        mine = [order.pop() for _ in range(k)]
        slots = torch.tensor([mine[j // page_size] * page_size + j % page_size for j in range(n)], dtype=torch.int32)
        req_to_token[row, :n] = slots
        kv[slots.long()] = torch.randn(n, HEAD_DIM, generator=g)
    return kv, req_to_token, rows


def dense_reference(q, kv, req_to_token, rows, seq_lens, scale):
    """Attention over each request's own tokens, gathered token by token (no pages involved)."""
    outs = []
    for i, (row, n) in enumerate(zip(rows.tolist(), seq_lens)):
        keys = kv[req_to_token[row, :n].long()]
        padded = torch.zeros(math.ceil(n / ops.BLOCK_SIZE) * ops.BLOCK_SIZE, HEAD_DIM)
        padded[:n] = keys
        table = torch.arange(padded.shape[0] // ops.BLOCK_SIZE, dtype=torch.int32)[None]
        out, _ = reference.mla_decode_reference(q[i:i + 1], padded.view(-1, ops.BLOCK_SIZE, HEAD_DIM), table,
                                                torch.tensor([n], dtype=torch.int32), 512, scale, causal=True)
        outs.append(out)
    return torch.cat(outs)


@pytest.mark.parametrize("page_size", [64, 128])
@pytest.mark.parametrize("q_len", [1, 2])
def test_decode_through_the_derived_table_reads_each_requests_tokens(page_size, q_len):
    seq_lens = [1, 63, 64, 65, 127, 128, 129, 300, 1000]
    kv, req_to_token, rows = sglang_pool(seq_lens, page_size, max_context_len=1024 + 64, pool_rows=16, seed=page_size)
    table = pages.block_table(req_to_token, rows)
    assert table.dtype == torch.int32 and tuple(table.shape) == (len(seq_lens), pages.num_blocks(req_to_token))
    q = torch.randn(len(seq_lens), q_len, 8, HEAD_DIM, generator=torch.Generator().manual_seed(1))
    cache_seqlens = torch.tensor(seq_lens, dtype=torch.int32)
    plan, splits = ops.get_mla_metadata(cache_seqlens, q_len * 8, 1)
    out, _ = ops.mla_decode_with_kvcache(q.bfloat16(), kv.bfloat16().view(-1, ops.BLOCK_SIZE, 1, HEAD_DIM), table,
                                         cache_seqlens, 512, plan, splits, softmax_scale=0.1, causal=True,
                                         check_values=False)
    expected = dense_reference(q.bfloat16(), kv.bfloat16(), req_to_token, rows, seq_lens, 0.1)
    assert not out.isnan().any()
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_the_table_is_written_into_a_persistent_buffer():
    kv, req_to_token, rows = sglang_pool([70, 5], 64, max_context_len=256, pool_rows=4, seed=0)
    buffer = torch.full((8, pages.num_blocks(req_to_token)), -7, dtype=torch.int32)
    out = pages.block_table(req_to_token, rows, out=buffer[:2])
    assert out.data_ptr() == buffer.data_ptr()
    assert torch.equal(buffer[:2], pages.block_table(req_to_token, rows)) and (buffer[2:] == -7).all()


def test_a_row_length_not_a_multiple_of_64_still_covers_its_last_page():
    req_to_token = torch.arange(2 * 100, dtype=torch.int32).view(2, 100)
    assert pages.num_blocks(req_to_token) == 2
    assert pages.block_table(req_to_token, torch.tensor([1])).tolist() == [[100 // 64, 164 // 64]]
