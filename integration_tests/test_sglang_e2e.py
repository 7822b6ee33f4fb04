"""`python -m sglang.launch_server --attention-backend mla_backend` end to end vs SGLang's flashmla and triton
backends (driver: sglang_e2e.py), on one GPU and at tensor parallel 2 where there are two GPUs.

The rules are the vLLM e2e test's (test_vllm_e2e.py says why they are relative):
  - teacher-forced logprobs of flashmla's own greedy tokens match flashmla's (max and mean |difference| no more
    than twice triton's, or under absolute floors far below what a real bug gives);
  - our greedy agreement with each built-in (per-prompt common prefix) is no lower than theirs with each other,
    beyond two standard errors of the paired per-prompt difference.
Set MLA_E2E_RESULTS=DIR to keep the results JSON and server logs.

    python -m pytest -q integration_tests/test_sglang_e2e.py -m gpu -s [-k tp1]
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import e2e_common
import sglang_e2e
from sglang_gpu import requires_hopper_and_sglang

pytestmark = [pytest.mark.gpu, requires_hopper_and_sglang]

LOGPROB_MAX_FLOOR = 0.1
LOGPROB_MEAN_FLOOR = 0.01
OURS, REFERENCE, OTHER = "mla_backend", "flashmla", "triton"


@pytest.fixture(scope="module", params=[1, 2], ids=lambda tp: f"tp{tp}")
def e2e(request, tmp_path_factory):
    tp = request.param
    if torch.cuda.device_count() < tp:
        pytest.skip(f"tensor parallel {tp} needs {tp} GPUs, this machine has {torch.cuda.device_count()}")
    keep = os.environ.get("MLA_E2E_RESULTS")
    workdir = Path(keep) / f"sglang-tp{tp}" if keep else tmp_path_factory.mktemp(f"sglang_e2e_tp{tp}")
    results = sglang_e2e.run(tp, workdir)
    (workdir / "results.json").write_text(json.dumps(results))
    print(f"\n[sglang tp{tp}] " + json.dumps(e2e_common.brief(results["summary"]), indent=1))
    return results["summary"]


def test_every_backend_served(e2e):
    assert e2e["errors"] == {}, e2e["errors"]


def test_our_kernel_served_with_cuda_graphs(e2e):
    assert e2e["our_kernel"].get(OURS), e2e["our_kernel"]
    assert all(e2e["cuda_graphs"].values()) and OURS in e2e["cuda_graphs"], e2e["cuda_graphs"]


def test_forced_tokens_are_the_reference_tokens(e2e):
    assert e2e["forced_tokens_ok"] and all(e2e["forced_tokens_ok"].values()), e2e["forced_tokens_ok"]


def test_teacher_forced_logprobs_match_flashmla(e2e):
    ours = e2e["forced"][f"{REFERENCE}~{OURS}"]
    builtin = e2e["forced"][f"{REFERENCE}~{OTHER}"]
    assert ours["positions"] >= 32 * (e2e_common.GEN_TOKENS - 1)
    assert ours["max"] <= max(LOGPROB_MAX_FLOOR, 2 * builtin["max"]), (ours, builtin)
    assert ours["mean"] <= max(LOGPROB_MEAN_FLOOR, 2 * builtin["mean"]), (ours, builtin)


def test_greedy_agreement_no_lower_than_between_builtins(e2e):
    builtin = e2e["greedy"][f"{REFERENCE}~{OTHER}"]
    for pair in (f"{REFERENCE}~{OURS}", f"{OTHER}~{OURS}"):
        shortfall, stderr = e2e_common.agreement_shortfall(e2e["greedy"][pair], builtin)
        assert shortfall <= 2 * stderr, (pair, shortfall, stderr, e2e["greedy"])
