"""Persistent homes for a decode step's plan, for engines that replay CUDA graphs.

A captured graph replays with the addresses it saw at capture; engines prepare each replay outside the graph, so
the plan that `ops.get_mla_metadata` returns for this step is copied into buffers allocated once, big enough for
every batch and query length the engine will capture.
"""
from __future__ import annotations

import torch

from mla_backend import ops, tile_scheduler


class PlanBuffers:
    def __init__(self, num_q_heads: int, q_lens: tuple[int, ...], max_batch: int, device: torch.device,
                 is_fp8_kvcache: bool = False):
        self.num_q_heads, self.device, self.is_fp8_kvcache = num_q_heads, device, is_fp8_kvcache
        most_parts = max(ops.num_sm_parts(q_len * num_q_heads, device) for q_len in q_lens)
        self.tile_scheduler_metadata = torch.zeros((most_parts, tile_scheduler.SCHED_FIELDS), dtype=torch.int32,
                                                   device=device)
        self.num_splits = torch.zeros(max_batch + 1, dtype=torch.int32, device=device)

    def parts(self, q_len: int, batch: int) -> int:
        """Rows of the plan that get_mla_metadata makes for a step of `batch` requests of q_len query tokens."""
        return ops.num_sm_parts(q_len * self.num_q_heads, self.device, self.is_fp8_kvcache, batch)

    def hold(self, tile_scheduler_metadata: torch.Tensor, num_splits: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The plan copied into the leading rows of the buffers; returns those (contiguous) slices."""
        return (copy_into(self.tile_scheduler_metadata, tile_scheduler_metadata),
                copy_into(self.num_splits, num_splits))


def copy_into(buffer: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """`values` written into the leading rows of a persistent buffer; returns that slice."""
    target = buffer[: values.shape[0]]
    target.copy_(values)
    return target
