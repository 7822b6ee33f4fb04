"""integration_tests/sglang_step_time.py on CPU (no SGLang needed): the one_batch command it runs per backend, and
how it reads and compares one_batch's result lines."""
from __future__ import annotations

import argparse
import json
import sys
import types

import sglang_step_time


def test_each_backend_runs_sglangs_one_batch_after_loading_the_plugins(tmp_path):
    args = argparse.Namespace(batch_size=[1, 64], input_len=2000, output_len=256, profile=True)
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"vocab_size": 258}))
    cmd = sglang_step_time.command(model, "mla_backend", args, tmp_path / "r.jsonl", tmp_path / "p.txt")
    code = cmd[2]
    assert code.index("load_plugins()") < code.index("import sglang.benchmark.one_batch") < code.index("cli_main()")
    assert cmd[3] == "258"   # the warm-up's synthetic ids are drawn below it
    flags = cmd[4:]
    assert flags[flags.index("--attention-backend") + 1] == "mla_backend"
    assert flags[flags.index("--page-size") + 1] == "64"
    assert flags[flags.index("--batch-size") + 1: flags.index("--batch-size") + 3] == ["1", "64"]
    assert flags[flags.index("--cuda-graph-max-bs-decode") + 1] == "64"
    assert "--profile" in flags and flags[flags.index("--profile-stage") + 1] == "decode"
    assert flags[flags.index("--prompt-filename") + 1] == str(tmp_path / "p.txt")


def test_prompts_are_letters_one_per_line_so_every_vocabulary_holds_their_ids(tmp_path):
    path = sglang_step_time.write_prompts(tmp_path / "p.txt", count=3, length=50)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(len(line) == 50 and line.isalpha() and line.isascii() for line in lines)
    assert lines == sglang_step_time.write_prompts(tmp_path / "q.txt", count=3, length=50).read_text().splitlines()


def test_results_are_read_and_compared_with_flashmla(tmp_path):
    lines = [{"run_name": "x", "batch_size": 1, "median_decode_latency": 0.0010},
             {"run_name": "x", "batch_size": 64, "median_decode_latency": 0.0016}]
    (tmp_path / "f.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    flashmla = sglang_step_time.read_results(tmp_path / "f.jsonl")
    assert flashmla == {"1": 1.0, "64": 1.6}
    summary = sglang_step_time.summarize({"flashmla": flashmla, "mla_backend": {"1": 1.25, "64": 1.5}})
    assert summary["mla_backend"]["1"] == {"ms_per_step": 1.25, "tokens_per_s": 800.0, "ms_more_than_flashmla": 0.25}
    assert summary["mla_backend"]["64"]["ms_more_than_flashmla"] == -0.1
    assert summary["flashmla"]["64"]["tokens_per_s"] == 40000.0


def test_the_runner_draws_one_batchs_synthetic_warm_up_ids_inside_the_vocabulary(tmp_path, monkeypatch):
    """RUN_ONE_BATCH against stand-ins for SGLang's plugin loader and one_batch: the warm-up's ids (no custom inputs)
    stay below the vocabulary size, custom inputs pass through, and the vocabulary argument is consumed."""
    seen = []
    one_batch = types.ModuleType("sglang.benchmark.one_batch")
    one_batch.prepare_synthetic_inputs_for_latency_test = lambda bs, il, custom=None: seen.append(custom)

    def cli_main():
        seen.append(list(sys.argv))
        one_batch.prepare_synthetic_inputs_for_latency_test(4, 16)
        one_batch.prepare_synthetic_inputs_for_latency_test(1, 2, [[7, 8]])

    one_batch.cli_main = cli_main
    plugins = types.ModuleType("sglang.srt.plugins")
    plugins.load_plugins = lambda: None
    for name, module in {"sglang": types.ModuleType("sglang"), "sglang.srt": types.ModuleType("sglang.srt"),
                         "sglang.srt.plugins": plugins, "sglang.benchmark": types.ModuleType("sglang.benchmark"),
                         "sglang.benchmark.one_batch": one_batch}.items():
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["sglang.benchmark"].one_batch = one_batch
    monkeypatch.setattr(sys, "argv", ["-c", "258", "--model-path", "/m"])
    exec(sglang_step_time.RUN_ONE_BATCH, {})
    argv, warm_up, custom = seen
    assert argv == ["one_batch", "--model-path", "/m"]
    assert len(warm_up) == 4 and all(len(row) == 16 and all(0 <= i < 258 for i in row) for row in warm_up)
    assert custom == [[7, 8]]
