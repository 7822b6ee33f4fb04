"""The reasons both adapters give for a configuration the kernel cannot serve (mla_backend/engine_limits.py)."""
from __future__ import annotations

import pytest
import torch

from mla_backend.engine_limits import refusal, unsupported_reasons

SGLANG_OK = dict(page_flag="--page-size", head_size=576, dtype=torch.bfloat16, kv_cache_dtype=torch.bfloat16,
                 page_size=64, capability=(9, 0), num_q_heads=128, q_len=1)


@pytest.mark.parametrize("override", [{}, dict(page_size=128), dict(dtype=torch.float16, kv_cache_dtype="auto"),
                                      dict(q_len=16), dict(num_q_heads=1), dict(capability=(9, 0))])
def test_what_the_kernel_runs_has_no_reasons(override):
    assert unsupported_reasons(**{**SGLANG_OK, **override}) == []
    assert refusal([]) is None


@pytest.mark.parametrize("override,words", [
    (dict(page_size=16), "KV pages of 64 tokens, got block size 16 (pass --page-size 64)"),
    (dict(page_size=1), "(pass --page-size 64)"),
    (dict(kv_cache_dtype=torch.float8_e4m3fn), "got kv_cache_dtype=torch.float8_e4m3fn"),
    (dict(dtype=torch.float32), "got torch.float32 (pass --dtype bfloat16)"),
    (dict(capability=(10, 0)), "this GPU has compute capability 10.0"),
    (dict(num_q_heads=256), "1 to 128 query heads per GPU, got 256"),
    (dict(q_len=17), "1 to 16 query tokens per request, got 17 (speculative decoding with 16 draft tokens)"),
    (dict(head_size=320), "head size 576"),
])
def test_each_reason_names_what_to_change(override, words):
    (reason,) = unsupported_reasons(**{**SGLANG_OK, **override})
    assert words in reason


def test_all_reasons_come_in_one_message():
    message = refusal(unsupported_reasons(**{**SGLANG_OK, "page_size": 1, "capability": (8, 0)}))
    assert message.startswith("mla_backend: ") and "--page-size 64" in message and "8.0" in message
