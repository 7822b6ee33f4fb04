"""The reasons both adapters give for a configuration the kernel cannot serve (mla_backend/engine_limits.py)."""
from __future__ import annotations

import pytest
import torch

from mla_backend.engine_limits import is_fp8_kv_cache, refusal, unsupported_reasons

SGLANG_OK = dict(page_flag="--page-size", head_size=576, dtype=torch.bfloat16, kv_cache_dtype=torch.bfloat16,
                 page_size=64, capability=(9, 0), num_q_heads=128, q_len=1)


@pytest.mark.parametrize("override", [{}, dict(page_size=128), dict(dtype=torch.float16, kv_cache_dtype="auto"),
                                      dict(q_len=16), dict(num_q_heads=1), dict(capability=(9, 0)),
                                      # fp8 e4m3 up to 32 query rows per GPU: DeepSeek-V3 at TP 8 (+ MTP) and TP 4
                                      dict(kv_cache_dtype=torch.float8_e4m3fn, num_q_heads=16, q_len=2),
                                      dict(kv_cache_dtype="fp8", num_q_heads=32),
                                      dict(kv_cache_dtype="fp8_e4m3", num_q_heads=8, q_len=4),
                                      dict(kv_cache_dtype="fp8", num_q_heads=None, q_len=None)])
def test_what_the_kernel_runs_has_no_reasons(override):
    assert unsupported_reasons(**{**SGLANG_OK, **override}) == []
    assert refusal([]) is None


@pytest.mark.parametrize("override,words", [
    (dict(page_size=16), "KV pages of 64 tokens, got block size 16 (pass --page-size 64)"),
    (dict(page_size=1), "(pass --page-size 64)"),
    (dict(kv_cache_dtype=torch.float8_e5m2), "fp8 KV caches in e4m3 only, got kv_cache_dtype=torch.float8_e5m2 "
                                             "(pass --kv-cache-dtype fp8_e4m3, or auto for the model's bf16/fp16)"),
    (dict(kv_cache_dtype="fp8_e5m2"), "e4m3 only, got kv_cache_dtype=fp8_e5m2"),
    (dict(kv_cache_dtype="fp8_inc"), "bf16/fp16 or in fp8 e4m3, got kv_cache_dtype=fp8_inc (pass --kv-cache-dtype "
                                     "auto or fp8_e4m3)"),
    (dict(kv_cache_dtype=torch.float8_e4m3fnuz), "got kv_cache_dtype=torch.float8_e4m3fnuz"),
    # DeepSeek-V3 (128 heads) at TP 1 with an fp8 cache: the fp8 kernel takes 32 query rows
    (dict(kv_cache_dtype=torch.float8_e4m3fn), "with an fp8 KV cache it takes at most 32 query rows per GPU (query "
     "heads per GPU x query tokens per request) for now, got 128 heads x 1 token = 128: pass a --tensor-parallel-size "
     "at least 4x larger (32 query heads per GPU or fewer), or --kv-cache-dtype auto"),
    (dict(kv_cache_dtype="fp8", tp_flag="--tp-size"), "pass a --tp-size at least 4x larger"),
    (dict(kv_cache_dtype="fp8_e4m3", num_q_heads=16, q_len=4), "got 16 heads x 4 tokens = 64 (speculative decoding "
     "with 3 draft tokens): pass a --tensor-parallel-size at least 2x larger (8 query heads per GPU or fewer), fewer "
     "draft tokens, or --kv-cache-dtype auto"),
    (dict(kv_cache_dtype="fp8", num_q_heads=1, q_len=17), "1 to 16 query tokens per request, got 17"),
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


@pytest.mark.parametrize("value,fp8", [("fp8", True), ("fp8_e4m3", True), (torch.float8_e4m3fn, True),
                                       ("fp8_e5m2", False), (torch.float8_e5m2, False), ("auto", False),
                                       (torch.bfloat16, False), (None, False)])
def test_fp8_e4m3_is_named_the_same_way_in_both_engines(value, fp8):
    """vLLM hands over its flag value (fp8 is e4m3 on CUDA), SGLang the torch dtype of its fp8_e4m3."""
    assert is_fp8_kv_cache(value) is fp8
