"""integration_tests/kv_cache_drift.py on stand-in result files: distances within the fp8 run over every forced
position, across runs only where both references were forced the same tokens, and the verdict both ways."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import e2e_common
import kv_cache_drift


def result(tokens: list[list[int]], logprobs: list[list[float]]) -> dict:
    forced = [(t, lp) for t, lp in zip(tokens, logprobs)]
    return {"forced_completions": forced, "forced_chat": forced[:1]}


def write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"result_{name}.json").write_text(json.dumps(data))


def test_forced_logprob_diff_stops_where_the_forced_tokens_part():
    x = result([[1, 2, 3, 4]], [[9.0, 0.0, 0.0, 0.0]])
    # step 0 (prefill) and the positions from the first differently forced token on are not compared
    y = result([[1, 2, 5, 4]], [[0.0, 0.1, 7.0, 7.0]])
    assert e2e_common.forced_logprob_diff(x, y) == {"max": pytest.approx(0.1), "mean": pytest.approx(0.1),
                                                    "positions": 2}
    assert e2e_common.forced_logprob_diff(x, x)["positions"] == 6   # same tokens: every position after step 0


@pytest.mark.parametrize("ours_error,verdict", [(0.05, True), (0.5, False)])
def test_drift_places_ours_against_the_reference_own_fp8_drift(tmp_path, ours_error, verdict):
    tokens = [[1, 2, 3, 4, 5]]
    write(tmp_path / "bf16", "flashmla_tp1", result(tokens, [[0.0, -1.0, -1.0, -1.0, -1.0]]))
    write(tmp_path / "fp8", "flashmla_tp1_fp8_e4m3", result(tokens, [[0.0, -1.2, -1.0, -1.0, -1.0]]))
    write(tmp_path / "fp8", "mla_backend_tp1_fp8_e4m3",
          result(tokens, [[0.0, -1.2 + ours_error, -1.0, -1.0, -1.0]]))
    report = kv_cache_drift.drift(tmp_path / "bf16", tmp_path / "fp8", "sglang")
    assert report["pairs"]["flashmla fp8 ~ flashmla bf16"]["max"] == pytest.approx(0.2)
    assert report["pairs"]["mla_backend fp8 ~ flashmla fp8"]["max"] == pytest.approx(ours_error)
    assert report["ours_within_the_reference_own_drift"] is verdict
    rc = kv_cache_drift.main(["--bf16-run", str(tmp_path / "bf16"), "--fp8-run", str(tmp_path / "fp8"),
                              "--out", str(tmp_path / "drift.json")])
    assert rc == (0 if verdict else 1)
    assert json.loads((tmp_path / "drift.json").read_text()) == report


def test_a_missing_result_names_the_folder_and_the_backend(tmp_path):
    with pytest.raises(SystemExit, match="result_flashmla_"):
        kv_cache_drift.drift(tmp_path, tmp_path, "sglang")


def test_runs_whose_references_part_at_once_are_refused_with_the_pair(tmp_path):
    write(tmp_path / "bf16", "flashmla_tp1", result([[1, 2, 3]], [[0.0, -1.0, -1.0]]))
    write(tmp_path / "fp8", "flashmla_tp1_fp8_e4m3", result([[1, 5, 3]], [[0.0, -1.0, -1.0]]))
    write(tmp_path / "fp8", "mla_backend_tp1_fp8_e4m3", result([[1, 5, 3]], [[0.0, -1.0, -1.0]]))
    assert e2e_common.forced_logprob_diff(load(tmp_path / "fp8"), load(tmp_path / "bf16"))["positions"] == 0
    with pytest.raises(SystemExit, match="flashmla fp8 ~ flashmla bf16"):
        kv_cache_drift.drift(tmp_path / "bf16", tmp_path / "fp8", "sglang")


def load(folder: Path) -> dict:
    return kv_cache_drift.load_result(folder, "flashmla")


def test_vllm_runs_are_read_under_vllms_backend_names(tmp_path):
    tokens, logprobs = [[1, 2, 3]], [[0.0, -1.0, -1.0]]
    write(tmp_path / "bf16", "FLASHMLA_tp1_forced", result(tokens, logprobs))
    for name in ("FLASHMLA", "CUSTOM"):
        write(tmp_path / "fp8", f"{name}_tp1_forced_fp8", result(tokens, logprobs))
    report = kv_cache_drift.drift(tmp_path / "bf16", tmp_path / "fp8", "vllm")
    assert set(report["pairs"]) == {"FLASHMLA fp8 ~ FLASHMLA bf16", "CUSTOM fp8 ~ FLASHMLA fp8",
                                    "CUSTOM fp8 ~ FLASHMLA bf16"}
