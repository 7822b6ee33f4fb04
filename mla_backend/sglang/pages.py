"""SGLang's KV slots -> the kernel's block table.

SGLang keeps, per request row of `req_to_token`, the KV slot of every token; with a page size P (a multiple of 64)
the slots of a page are P consecutive ones starting at a multiple of P. So every 64-token stretch that starts at a
token index multiple of 64 is one 64-slot page of the cache viewed as [num_slots // 64, 64, 576], numbered
slot // 64. Gathering every 64th column gives the whole block table with a static shape (CUDA graphs) and no host
sync; entries past a request's length are stale and never read by the kernel.
"""
from __future__ import annotations

import torch

from mla_backend import ops


def num_blocks(req_to_token: torch.Tensor) -> int:
    """Columns of the block table: enough 64-token pages for a full req_to_token row."""
    return -(-req_to_token.shape[1] // ops.BLOCK_SIZE)


def block_table(req_to_token: torch.Tensor, req_pool_indices: torch.Tensor, out: torch.Tensor | None = None
                ) -> torch.Tensor:
    """int32 [len(req_pool_indices), num_blocks(req_to_token)]; written into `out` (a persistent int32 buffer of
    that shape) if given. Two kernels (a row gather, an in-place divide), no host sync, graph capturable."""
    first_slots = req_to_token[:, :: ops.BLOCK_SIZE]
    if out is None:
        return torch.index_select(first_slots, 0, req_pool_indices).floor_divide_(ops.BLOCK_SIZE).to(torch.int32)
    if first_slots.dtype == out.dtype:
        torch.index_select(first_slots, 0, req_pool_indices, out=out)
    else:
        out.copy_(torch.index_select(first_slots, 0, req_pool_indices))
    return out.floor_divide_(ops.BLOCK_SIZE)
