"""The soak (driver: soak.py) of each engine's server with our backend on a Hopper GPU: ~1200 requests of mixed
lengths (some at the context limit, some cancelled mid-stream) through one server with CUDA graphs on; no request
fails, GPU memory does not grow after the warm-up pass, a prompt served alone gives the same greedy tokens before
and after the load.
Set MLA_E2E_RESULTS=DIR to keep the results JSON and the server log (DIR/soak-<engine>).

    python -m pytest -q integration_tests/test_soak.py -m gpu -s [-k sglang]
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import soak
from sglang_gpu import requires_hopper_and_sglang
from vllm_gpu import requires_hopper_and_vllm_026

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", params=[pytest.param("sglang", marks=requires_hopper_and_sglang),
                                        pytest.param("vllm", marks=requires_hopper_and_vllm_026)])
def soaked(request, tmp_path_factory) -> dict:
    engine = request.param
    keep = os.environ.get("MLA_E2E_RESULTS")
    workdir = Path(keep) / f"soak-{engine}" if keep else tmp_path_factory.mktemp(f"soak-{engine}")
    soak.main(["--engine", engine, "--workdir", str(workdir)])
    return json.loads((workdir / f"soak_{engine}.json").read_text())


def test_every_request_completed_or_was_cancelled(soaked):
    counts = soaked["counts"]
    assert counts["errors"] == 0, counts["first_errors"]
    sent = soaked["settings"]["requests"] * soaked["settings"]["passes"]
    assert counts["completed"] + counts["cancelled"] == counts["sent"] == sent, counts
    assert counts["cancelled"] > 0, counts


def test_no_gpu_memory_growth_after_warmup(soaked):
    memory = soaked["memory"]
    assert memory["growth_mib"] is not None and memory["growth_mib"] <= soaked["settings"]["max_growth_mib"], memory


def test_a_prompt_served_alone_gives_the_same_greedy_tokens_before_and_after_the_load(soaked):
    alone = soaked["repeats"]["alone"]
    assert alone["prompts"] == soak.REPEAT_PROMPTS and not alone["errors"], alone
    assert alone["all_identical"], alone["differ"]


def test_served_by_our_backend_with_cuda_graphs(soaked):
    assert soaked["log"]["cuda_graphs"], soaked["log"]
    if soaked["engine"] == "sglang":
        assert soaked["log"]["our_kernel"], soaked["log"]
    assert soaked["failures"] == []
