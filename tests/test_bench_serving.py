"""benchmarks/bench_serving.py and its default model (mla_backend/models/serving_model.py) on CPU: arguments, the server
commands per engine, the prompts, the measurement arithmetic, the results files; the checkpoint's config and
tensors (DeepSeek-V3's attention with a q LoRA, small elsewhere)."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

import bench_serving
import e2e_common

from mla_backend.models import serving_model, tiny_model


def args_of(*argv):
    return bench_serving.parse_args(list(argv))


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_defaults_are_the_issue_grid():
    args = args_of()
    assert args.engines == ["sglang", "vllm"]
    assert args.prompt_lens == [4096, 16384, 32768] and args.concurrency == [1, 16, 64]
    assert bench_serving.backends_of(args, "sglang") == ("flashmla", "flashinfer", "triton", "mla_backend")
    assert bench_serving.backends_of(args, "vllm") == ("FLASH_ATTN_MLA", "FLASHMLA", "TRITON_MLA", "CUSTOM")
    assert bench_serving.points(args) == [(n, c) for n in (4096, 16384, 32768) for c in (1, 16, 64)]
    assert bench_serving.context_length(args) == 32768 + 4096 + 64 and bench_serving.context_length(args) % 64 == 0


def test_a_token_cap_drops_the_points_whose_prefill_would_dominate():
    args = args_of("--max-tokens-in-flight", "262144")
    assert bench_serving.points(args) == [(4096, 1), (4096, 16), (4096, 64), (16384, 1), (16384, 16), (32768, 1)]
    assert bench_serving.workload(args)["points"] == [list(p) for p in bench_serving.points(args)]


@pytest.mark.parametrize("argv", [["--engines", "trt"], ["--concurrency", "0"], ["--repeats", "0"],
                                  ["--max-tokens-in-flight", "100"], ["--min-window-tokens", "300"],
                                  ["--decode-tokens", "8192"], ["--stream-interval", "0"], ["--num-heads", "0"],
                                  ["--num-heads", "16", "--model", "/m"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        args_of(*argv)


def test_ours_serves_with_page_64_the_builtins_with_their_engines_page_size_all_with_the_workloads_batch():
    args = args_of("--prompt-lens", "4000", "--concurrency", "1", "8", "--tp", "2", "--sglang-args", "--foo 1")
    sglang = bench_serving.server_command("sglang", "py", Path("/m"), "mla_backend", args, 1234)
    assert sglang[:3] == ["py", "-m", "sglang.launch_server"] and flag(sglang, "--attention-backend") == "mla_backend"
    assert flag(sglang, "--page-size") == "64" and flag(sglang, "--tp-size") == "2"
    assert flag(sglang, "--max-running-requests") == "8" == flag(sglang, "--cuda-graph-max-bs-decode")
    assert flag(sglang, "--context-length") == str(bench_serving.context_length(args))
    assert "--disable-radix-cache" not in sglang and sglang[-2:] == ["--foo", "1"]
    vllm = bench_serving.server_command("vllm", "py", Path("/m"), "CUSTOM", args_of("--no-prefix-cache"), 1)
    assert vllm[1:4] == ["-m", "vllm.entrypoints.cli.main", "serve"] and flag(vllm, "--attention-backend") == "CUSTOM"
    assert flag(vllm, "--block-size") == "64" and "--no-enable-prefix-caching" in vllm
    assert flag(vllm, "--max-num-seqs") == "64"
    for engine, builtin in (("sglang", "flashinfer"), ("vllm", "FLASH_ATTN_MLA")):
        cmd = bench_serving.server_command(engine, "py", Path("/m"), builtin, args, 1)
        assert "--page-size" not in cmd and "--block-size" not in cmd


def test_results_of_another_workload_are_not_reused():
    model = Path("/m")
    assert bench_serving.workload_key(args_of(), model) == bench_serving.workload_key(args_of(), model)
    assert bench_serving.workload_key(args_of(), model) != bench_serving.workload_key(args_of("--repeats", "4"), model)
    assert bench_serving.workload_key(args_of(), model) != bench_serving.workload_key(args_of(), Path("/n"))


def test_fp8_serves_every_backend_on_its_engines_fp8_cache_under_its_own_key_and_file(tmp_path):
    from mla_backend.engine_limits import FP8_KV_CACHE_DTYPE_NAMES

    fp8 = args_of("--kv-cache-dtype", "fp8", "--sglang-args", "--foo 1")
    for engine, backend in (("sglang", "mla_backend"), ("sglang", "flashmla"), ("vllm", "CUSTOM"), ("vllm", "FLASHMLA")):
        cmd = bench_serving.server_command(engine, "py", Path("/m"), backend, fp8, 1)
        assert flag(cmd, "--kv-cache-dtype") == bench_serving.FP8_KV_FLAG[engine] in FP8_KV_CACHE_DTYPE_NAMES
        assert "--kv-cache-dtype" not in bench_serving.server_command(engine, "py", Path("/m"), backend, args_of(), 1)
    assert bench_serving.server_command("sglang", "py", Path("/m"), "flashmla", fp8, 1)[-2:] == ["--foo", "1"]
    # bf16 runs keep the keys they had before the option existed; fp8 runs get their own
    assert "kv_cache_dtype" not in bench_serving.workload(args_of())
    assert bench_serving.workload_key(fp8, Path("/m")) != bench_serving.workload_key(args_of("--sglang-args", "--foo 1"),
                                                                                     Path("/m"))
    report = report_with([], [])
    report["workload"] = bench_serving.workload(fp8)
    json_path, md_path = bench_serving.write_results(tmp_path, report)
    assert json_path.name == "serving_h200_fp8.json" and md_path.name == "serving_h200_fp8.md"
    assert md_path.read_text().startswith("# Serving benchmark: h200, fp8 KV cache")


def test_prompts_are_reproducible_random_ids_without_special_tokens(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 10, "bos_token_id": 8, "eos_token_id": [9]}))
    vocab, special = e2e_common.vocabulary(tmp_path)
    assert vocab == 10 and special == {8, 9}
    batch = bench_serving.prompts(vocab, special, 50, 3, seed=0)
    assert len(batch) == 3 and all(len(p) == 50 for p in batch)
    assert {i for p in batch for i in p} <= set(range(8)) and batch[0] != batch[1]
    assert batch == bench_serving.prompts(vocab, special, 50, 3, seed=0)


def trace(first: float, step: float, tokens: int, every: int = 1) -> list[tuple[float, int]]:
    """A request whose first token arrives at `first`, then one token per `step` s, streamed every `every`."""
    return [(first + (n - 1) * step, n) for n in range(1, tokens + 1) if n == 1 or n % every == 0 or n == tokens]


def test_the_decode_rate_is_read_while_every_request_decodes():
    # two requests at 2 ms per step; the second was prefilled 0.1 s later (its prefill ran beside the first's decode)
    traces = [trace(1.0, 0.002, 300, every=8), trace(1.1, 0.002, 300, every=8)]
    rate = e2e_common.decode_rate(0.5, traces)
    assert rate["decode_tokens_per_s"] == pytest.approx(2 / 0.002) and rate["tpot_ms"] == pytest.approx(2.0)
    assert rate["window_s"] == pytest.approx(1.0 + 299 * 0.002 - 1.1)
    assert rate["first_token_s"] == pytest.approx([0.6, 0.5])
    assert 200 < rate["window_tokens_min"] < 250


def test_no_rate_without_a_common_decode_window():
    # the first request finished before the second had its first token: no step decoded both
    assert e2e_common.decode_rate(0.0, [trace(0.0, 0.002, 100), trace(1.0, 0.002, 100)]) is None


def test_a_short_window_asks_for_more_tokens_and_the_median_round_counts(monkeypatch):
    asked = []

    def fake_round(base_url, model, batch, max_tokens):
        asked.append(max_tokens)
        if max_tokens == 16:   # the warm-up round, sent 1.5 s ago
            return time.perf_counter() - 1.5, [trace(0.0, 0.002, 16)] * len(batch)
        step = 0.002 if len(asked) % 2 else 0.0025
        return 0.0, [trace(0.0, step, max_tokens), trace(0.3, step, max_tokens)]  # 0.3 s prefill stagger

    monkeypatch.setattr(e2e_common, "stream_round", fake_round)
    client = type("Client", (), {"base_url": "http://h/v1/"})()
    point = bench_serving.measure(client, [[1] * 10] * 2, args_of("--decode-tokens", "200"))
    assert asked == [16, 200, 200, 400, 400]   # after 0.3 s of stagger, 200 tokens at 2 ms leave a 49-token window
    # the two 400-token rounds read 800 and 1000 tok/s: their median
    assert point["max_tokens"] == 400 and point["decode_tokens_per_s"] == pytest.approx(900.0)
    assert point["tpot_ms"] == pytest.approx(1e3 * 2 / 900.0)
    assert point["prompt_len"] == 10 and point["concurrency"] == 2
    assert point["warmup_s"] == pytest.approx(1.5, abs=0.5)
    with pytest.raises(RuntimeError, match="no window of 128 tokens"):
        asked.clear()
        bench_serving.measure(client, [[1]] * 2, args_of("--decode-tokens", "200", "--max-decode-tokens", "399"))


def test_decode_speed_reads_several_long_rounds_and_prints_them(monkeypatch, capsys):
    asked = {}

    def fake_steady_decode(base_url, model, prompts, max_tokens, **kwargs):
        asked.update(prompts=len(prompts), max_tokens=max_tokens, **kwargs)
        return {"decode_tokens_per_s": 105.0, "rounds_tokens_per_s": [100.0, 120.0, 90.0, 110.0, 105.0],
                "max_tokens": max_tokens}

    class Client:
        base_url = "http://127.0.0.1:1"

    monkeypatch.setattr(e2e_common, "steady_decode", fake_steady_decode)
    assert e2e_common.decode_speed(Client(), 64) == 105.0
    assert asked == {"prompts": 64, "max_tokens": e2e_common.SPEED_TOKENS, "repeats": e2e_common.SPEED_REPEATS,
                     "max_tokens_cap": 4096 - e2e_common.SPEED_PROMPT_CHARS - 64}
    assert "rounds [100, 120, 90, 110, 105] tok/s" in capsys.readouterr().out
    e2e_common.decode_speed(Client(), 1, context_length=2600)   # a short context caps the tokens asked for
    assert asked["max_tokens"] == 2600 - e2e_common.SPEED_PROMPT_CHARS - 64


def test_the_median_round_counts_not_an_outlier_and_keeps_the_nearest_rounds_window():
    rounds = [{"decode_tokens_per_s": r, "tpot_ms": 1e3 * 64 / r, "window_s": w}
              for r, w in ((7992.0, 1.0), (7910.0, 2.0), (7967.0, 3.0), (9130.0, 4.0))]
    point = e2e_common.median_round(rounds)
    assert point["decode_tokens_per_s"] == pytest.approx((7967.0 + 7992.0) / 2)   # 9130 is not kept
    assert point["tpot_ms"] == pytest.approx(1e3 * 64 / point["decode_tokens_per_s"])
    assert point["window_s"] in (1.0, 3.0)
    assert e2e_common.median_round(rounds[:3])["decode_tokens_per_s"] == 7967.0


def test_a_batch_that_never_decodes_together_is_not_measured_and_says_why(monkeypatch):
    def fake_speed(client, batch):
        if batch == 64:
            raise e2e_common.NoDecodeWindow("no window of 64 tokens per request where all 64 requests decode together")
        return 100.0

    monkeypatch.setattr(e2e_common, "decode_speed", fake_speed)
    assert e2e_common.decode_speeds(None, (1, 64)) == {
        "decode_tokens_per_s": {"1": 100.0, "64": None},
        "decode_speed_errors": {"64": "no window of 64 tokens per request where all 64 requests decode together"}}
    monkeypatch.setattr(e2e_common, "decode_speed", lambda client, batch: 50.0)
    assert e2e_common.decode_speeds(None, (1, 64)) == {"decode_tokens_per_s": {"1": 50.0, "64": 50.0}}

    def broken_stream(client, batch):   # a server that returns fewer tokens than asked: the backend fails
        raise RuntimeError("asked for 64 tokens, the stream reported 3")

    monkeypatch.setattr(e2e_common, "decode_speed", broken_stream)
    with pytest.raises(RuntimeError, match="stream reported 3"):
        e2e_common.decode_speeds(None, (1,))


class FakeStream:
    def __init__(self, lines):
        self.lines = lines

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def raise_for_status(self):
        pass

    def iter_bytes(self):
        """The lines as a server sends them, cut into 7-byte chunks (one line's JSON spans several)."""
        raw = "".join(line + "\r\n" for line in self.lines).encode()
        return iter(raw[i:i + 7] for i in range(0, len(raw), 7))


def test_a_stream_is_read_as_token_counts_over_time():
    # vLLM writes text unescaped: U+0085 and U+2028 are line breaks to str.splitlines, not to an event stream.
    chunks = [{"choices": [{"text": text}], "usage": {"completion_tokens": n}}
              for n, text in ((1, "ab"), (8, "a\u2028b\x85"), (16, "é"))]
    lines = [f"data: {json.dumps(c, ensure_ascii=False)}" for c in chunks] + ["", "data: [DONE]"]
    http = type("Http", (), {"stream": lambda self, method, url, json: FakeStream(lines)})()
    got = e2e_common.stream_one(http, "m", [1, 2], 16)
    assert [n for _, n in got] == [1, 8, 16] and all(a[0] <= b[0] for a, b in zip(got, got[1:]))
    with pytest.raises(RuntimeError, match="asked for 32 tokens"):
        e2e_common.stream_one(http, "m", [1, 2], 32)


def report_with(points_ours, points_ref) -> dict:
    args = args_of("--engines", "sglang")
    return {"card": "h200", "device_name": "NVIDIA H200", "model": "/m", "model_fingerprint": "f0",
            "workload": bench_serving.workload(args),
            "date": "2026-11-29T00:00:00+00:00", "engines": {
                "sglang": {"backends": ["flashmla", "triton", "mla_backend"], "version": "0.5.17",
                           "errors": {"triton": "RuntimeError: did not come up\n..."},
                           "results": {"flashmla": {"points": points_ref, "cuda_graphs": True},
                                                       "triton_ok": {"points": [], "cuda_graphs": True},
                                       "mla_backend": {"points": points_ours, "cuda_graphs": True}}},
                "vllm": {"backends": ["FLASHMLA"], "version": None, "results": {},
                         "errors": {}, "skipped": "vllm is not installed"}}}


def test_results_are_written_as_json_and_a_table(tmp_path):
    def point(tps, c):
        return {"prompt_len": 4096, "concurrency": c, "decode_tokens_per_s": tps, "tpot_ms": 1e3 * c / tps}

    report = report_with([point(1200.0, 1), point(3000.0, 16)], [point(1000.0, 1), point(4000.0, 16)])
    report["engines"]["sglang"]["results"]["triton_ok"]["points"] = [point(1500.0, 1)]
    report["engines"]["sglang"]["backends"].insert(2, "triton_ok")
    json_path, md_path = bench_serving.write_results(tmp_path, report)
    assert json_path.name == "serving_h200.json" and json.loads(json_path.read_text()) == report
    assert bench_serving.ratios(report["engines"]["sglang"], "sglang") == {
        "4096x1": {"best_builtin": "triton_ok", "ratio": 0.8}, "4096x16": {"best_builtin": "flashmla", "ratio": 0.75}}
    md = md_path.read_text()
    assert "| prompt | c | `flashmla` | `triton` | `triton_ok` | `mla_backend` | `mla_backend` / best built-in |" in md
    assert "| 4096 | 1 | 1000 (1.00) | — | 1500 (0.67) | 1200 (0.83) | 0.80x (`triton_ok`) |" in md
    assert "`triton` failed: RuntimeError: did not come up" in md and "Skipped: vllm is not installed" in md


def test_a_point_reads_the_median_of_its_rounds_and_older_files_render_again_from_theirs(tmp_path):
    # a file written before the median: decode_tokens_per_s held the fastest round
    old = {"prompt_len": 4096, "concurrency": 64, "decode_tokens_per_s": 9130.0, "tpot_ms": 7.01,
           "rounds_tokens_per_s": [7992.0, 7910.0, 7967.0, 9130.0]}
    ref = {"prompt_len": 4096, "concurrency": 64, "decode_tokens_per_s": 7920.0, "tpot_ms": 8.08,
           "rounds_tokens_per_s": [7897.0, 7913.0, 7853.0, 7920.0]}
    assert bench_serving.decode_rate(old) == pytest.approx(7979.5)
    assert bench_serving.tpot_ms(old) == pytest.approx(1e3 * 64 / 7979.5)
    assert bench_serving.decode_rate({"decode_tokens_per_s": 5.0, "concurrency": 1}) == 5.0   # no rounds kept
    json_path, md_path = bench_serving.write_results(tmp_path, report_with([old], [ref]))
    md_path.unlink()
    assert bench_serving.main(["--render", str(json_path)]) == 0
    md = md_path.read_text()
    assert "the median of 2 rounds" in md
    assert "| 4096 | 64 | 7905 (8.10) | — | 7980 (8.02) | 1.01x (`flashmla`) |" in md


def test_a_results_file_names_the_commit_and_each_engines_torch_and_older_files_render_without_them(tmp_path):
    report = report_with([], [])
    report["commit"] = "91815a0"
    report["engines"]["sglang"]["torch"] = "2.11.0+cu130"
    md = bench_serving.render_markdown(report)
    assert "model `/m`; commit 91815a0; 2026-11-29T00:00:00+00:00." in md
    assert "## sglang 0.5.17 (torch 2.11.0+cu130)" in md and "## vllm\n" in md
    older = bench_serving.render_markdown(report_with([], []))
    assert "model `/m`; 2026-11-29T00:00:00+00:00." in older and "## sglang 0.5.17\n" in older
    assert args_of("--commit", "abc1234").commit == "abc1234" and args_of().commit is None


def test_the_card_comes_from_the_device_name():
    from mla_backend.cli.bench import card_slug

    assert card_slug("NVIDIA H200") == "h200"
    assert card_slug("NVIDIA H100 80GB HBM3") == "h100"


def test_an_fp8_run_serves_deepseek_v3_at_tp8s_16_heads_a_gpu_beside_the_128_head_checkpoint(tmp_path):
    from mla_backend.engine_limits import fp8_rows_reason

    bf16 = args_of("--workdir", str(tmp_path))
    fp8 = args_of("--workdir", str(tmp_path), "--kv-cache-dtype", "fp8")
    assert bench_serving.num_heads(bf16) == 128 and bench_serving.model_dir(bf16) == tmp_path / "serving-deepseek-mla"
    assert bench_serving.num_heads(fp8) == 16 and bench_serving.model_dir(fp8) == tmp_path / "serving-deepseek-mla-h16"
    assert fp8_rows_reason(bench_serving.num_heads(fp8), 1, "--tp") is None       # our fp8 path serves it
    assert fp8_rows_reason(bench_serving.num_heads(bf16), 1, "--tp") is not None  # and refuses the default
    assert bench_serving.num_heads(args_of("--kv-cache-dtype", "fp8", "--num-heads", "32")) == 32


def test_num_layers_names_its_own_checkpoint_and_is_refused_with_a_given_model(tmp_path, capsys):
    deep = args_of("--workdir", str(tmp_path), "--num-layers", "61")
    assert bench_serving.num_layers(deep) == 61
    assert bench_serving.model_dir(deep) == tmp_path / "serving-deepseek-mla-l61"
    assert bench_serving.num_layers(args_of("--workdir", str(tmp_path))) == serving_model.NUM_LAYERS
    for bad in (["--num-layers", "0"], ["--num-layers", "4", "--model", str(tmp_path)]):
        with pytest.raises(SystemExit):
            args_of(*bad)
        assert "--num-layers" in capsys.readouterr().err


def test_a_dry_run_prints_the_commands_and_starts_nothing(capsys, tmp_path):
    assert bench_serving.main(["--dry-run", "--engines", "sglang", "--card", "x", "--workdir", str(tmp_path),
                               "--sglang-python", "py"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and all("sglang.launch_server" in line for line in out[:4])
    assert json.loads(out[4])["card"] == "x"


# ------------------------------------------------------------------------------------ the serving model


def test_the_serving_model_has_deepseek_v3s_attention_and_little_else():
    cfg = serving_model.config()
    assert (cfg["num_attention_heads"], cfg["kv_lora_rank"], cfg["qk_rope_head_dim"], cfg["qk_nope_head_dim"],
            cfg["v_head_dim"]) == (128, 512, 64, 128, 128)
    assert cfg["q_lora_rank"] == 512 and cfg["num_hidden_layers"] == 32 and cfg["hidden_size"] == 512
    assert cfg["architectures"] == ["DeepseekV2ForCausalLM"] and cfg["rope_scaling"]["type"] == "yarn"
    assert cfg["vocab_size"] == 258 and cfg["first_k_dense_replace"] == 1
    sizes = serving_model.describe(cfg)
    # the attention's weights are nearly all a layer reads besides the cache; the cache overtakes them at ~68k tokens
    assert sizes["mlp_weight_bytes_per_layer"] < 0.05 * sizes["attention_weight_bytes_per_layer"]
    assert 60_000 < sizes["tokens_where_kv_reads_match_weights"] < 70_000


@pytest.mark.parametrize("shape", [dict(num_heads=0), dict(hidden_size=100), dict(q_lora_rank=True)])
def test_bad_serving_model_shapes_are_refused(shape):
    with pytest.raises(ValueError):
        serving_model.config(**shape)


def test_a_small_serving_model_is_written_with_q_lora_tensors_and_reused(tmp_path):
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    from safetensors.torch import load_file

    shape = dict(num_layers=2, num_heads=4, hidden_size=128, q_lora_rank=64)
    path = serving_model.ensure(tmp_path / "m", **shape)
    cfg = json.loads((path / "config.json").read_text())
    weights = load_file(str(path / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in weights.items()} == tiny_model._shapes(cfg)
    qk = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    assert tuple(weights["model.layers.1.self_attn.q_a_proj.weight"].shape) == (64, 128)
    assert tuple(weights["model.layers.1.self_attn.q_b_proj.weight"].shape) == (4 * qk, 64)
    assert "model.layers.0.self_attn.q_proj.weight" not in weights
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert serving_model.ensure(tmp_path / "m", **shape) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # the same shape: not written again
    serving_model.ensure(tmp_path / "m", **{**shape, "num_layers": 1})
    assert json.loads((path / "config.json").read_text())["num_hidden_layers"] == 1


def test_the_serving_models_random_tokens_detokenize_one_character_a_step(tmp_path):
    """Engines detokenize incrementally; with the byte tokenizer random ids are mostly invalid UTF-8, and vLLM's
    DecodeStream re-decoded the growing undecodable tail every step. Each id must give its character at once."""
    pytest.importorskip("safetensors")
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.decoders import DecodeStream

    path = serving_model.ensure(tmp_path / "m", num_layers=1, num_heads=4, hidden_size=128, q_lora_rank=64)
    tokenizer = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    rng = random.Random(0)
    ids = [rng.randrange(256) for _ in range(200)]
    stream = DecodeStream(skip_special_tokens=True)
    pieces = [stream.step(tokenizer, i) for i in ids]
    assert all(piece is not None and len(piece) == 1 and piece.isprintable() for piece in pieces)
    assert "".join(pieces) == tokenizer.decode(ids)
    assert tokenizer.encode("".join(pieces)).ids == [tiny_model.BOS_ID] + ids


def test_the_other_engines_earlier_results_are_merged_only_under_the_same_workload(tmp_path):
    earlier = report_with([], [])
    (tmp_path / "e.json").write_text(json.dumps(earlier))
    now = {**earlier, "engines": {}}
    assert bench_serving.earlier_engines(tmp_path / "e.json", now, ["vllm"]) == {"sglang": earlier["engines"]["sglang"]}
    other = {**now, "workload": bench_serving.workload(args_of("--repeats", "5"))}
    with pytest.raises(SystemExit, match="--merge"):
        bench_serving.earlier_engines(tmp_path / "e.json", other, ["vllm"])
    another_checkpoint = {**now, "model_fingerprint": "f1"}   # e.g. the same path, another tokenizer
    with pytest.raises(SystemExit, match="checkpoint f0"):
        bench_serving.earlier_engines(tmp_path / "e.json", another_checkpoint, ["vllm"])


def test_results_files_are_plotted_with_one_panel_per_file_and_measured_engine(tmp_path):
    pytest.importorskip("matplotlib")
    import plot_serving

    def point(tps, c):
        return {"prompt_len": 4096, "concurrency": c, "decode_tokens_per_s": tps, "tpot_ms": 1e3 * c / tps}

    report = report_with([point(1200.0, 1), point(3000.0, 16)], [point(1000.0, 1), point(4000.0, 16)])
    assert [engine for engine, _ in plot_serving.measured_engines(report)] == ["sglang"]
    png = plot_serving.plot([report], tmp_path / "serving.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        path.write_text(json.dumps(report))
    assert plot_serving.main([*map(str, paths), "--png", str(tmp_path / "two.png")]) == 0
    assert (tmp_path / "two.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report["engines"]["sglang"]["results"] = {}
    with pytest.raises(ValueError, match="no engine"):
        plot_serving.plot([report], tmp_path / "none.png")
