"""`python -m sglang.launch_server --attention-backend mla_backend` end to end vs SGLang's flashmla and triton
backends (driver: sglang_e2e.py), on one GPU and at tensor parallel 2 where there are two GPUs.

The rules are the vLLM e2e test's (test_vllm_e2e.py says why they are relative):
  - teacher-forced logprobs of flashmla's own greedy tokens match flashmla's (max and mean |difference| no more
    than twice triton's, or under absolute floors far below what a real bug gives);
  - our greedy agreement with each built-in (per-prompt common prefix) is no lower than theirs with each other,
    beyond two standard errors of the paired per-prompt difference.
Set MLA_E2E_RESULTS=DIR to keep the results JSON and server logs. MLA_E2E_KV_CACHE_DTYPE=fp8_e4m3 runs the same
tests with every backend on SGLang's fp8 KV pool (test ids end in -fp8_e4m3).

    python -m pytest -q integration_tests/test_sglang_e2e.py -m gpu -s [-k tp1]
    MLA_E2E_KV_CACHE_DTYPE=fp8_e4m3 python -m pytest -q integration_tests/test_sglang_e2e.py -m gpu -s -k tp1
"""
from __future__ import annotations

import pytest

import e2e_common
import sglang_e2e
from sglang_gpu import requires_hopper_and_sglang

pytestmark = [pytest.mark.gpu, requires_hopper_and_sglang]

OURS, REFERENCE, OTHER = "mla_backend", "flashmla", "triton"


KV = sglang_e2e.kv_tag(sglang_e2e.kv_cache_dtype()).replace("_", "-", 1)


@pytest.fixture(scope="module", params=[1, 2], ids=lambda tp: f"tp{tp}{KV}")
def e2e(request, tmp_path_factory):
    tp = request.param
    return e2e_common.run_for_test(lambda workdir, on_up: sglang_e2e.run(tp, workdir, on_up=on_up),
                                   f"sglang-tp{tp}{KV}", tp, tmp_path_factory)


def test_every_backend_served(e2e):
    assert e2e["errors"] == {}, e2e["errors"]


def test_our_kernel_served_with_cuda_graphs(e2e):
    assert e2e["our_kernel"].get(OURS), e2e["our_kernel"]
    assert all(e2e["cuda_graphs"].values()) and OURS in e2e["cuda_graphs"], e2e["cuda_graphs"]


def test_our_kernel_read_the_kv_cache_dtype_asked_for(e2e):
    assert e2e["our_fp8_kv"].get(OURS) == (sglang_e2e.kv_cache_dtype() != "auto"), e2e["our_fp8_kv"]


def test_forced_tokens_are_the_reference_tokens(e2e):
    assert e2e["forced_tokens_ok"] and all(e2e["forced_tokens_ok"].values()), e2e["forced_tokens_ok"]


def test_teacher_forced_logprobs_match_flashmla(e2e):
    e2e_common.assert_forced_logprobs_match(e2e, REFERENCE, OTHER, OURS)


def test_greedy_agreement_no_lower_than_between_builtins(e2e):
    e2e_common.assert_greedy_agreement(e2e, REFERENCE, OTHER, OURS)
