"""bench_serving --interleave on CPU: every backend's server up at once on its share of the memory, each point's
rounds alternating between them (e2e_common.steady_decode_together), a backend that fails left out by name; against
the stand-in servers of tests/fake_engine_server.py."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import bench_serving
import e2e_common
import host_cpus

FAKE = Path(__file__).resolve().parent / "fake_engine_server.py"


def args_of(*argv):
    return bench_serving.parse_args(list(argv))


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def steady(step: float, tokens: int) -> tuple[float, list]:
    """stream_round's answer for two requests decoding together at `step` seconds a token."""
    return 0.0, [[(n * step, n) for n in range(1, tokens + 1)], [(0.01 + n * step, n) for n in range(1, tokens + 1)]]


def test_rounds_visit_every_server_starting_one_further_each_round_and_each_keeps_its_median(monkeypatch):
    visits = []
    steps = {"a": [0.002, 0.001, 0.003], "b": [0.004, 0.002, 0.002], "c": [0.001, 0.001, 0.001]}

    def fake_round(base_url, model, batch, max_tokens):
        visits.append((base_url, max_tokens))
        if max_tokens == 4:
            return time.perf_counter(), []
        return steady(steps[base_url][sum(1 for u, t in visits if u == base_url and t != 4) - 1], max_tokens)

    monkeypatch.setattr(e2e_common, "stream_round", fake_round)
    rates = e2e_common.steady_decode_together({"a": "a", "b": "b", "c": "c"}, "m", [[1], [2]], 100,
                                              warmup_tokens=4, repeats=3, min_window_tokens=16)
    assert [u for u, _ in visits] == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert rates["a"]["decode_tokens_per_s"] == pytest.approx(2 / 0.002)   # the median of 1000, 2000 and 667
    assert rates["b"]["rounds_tokens_per_s"] == pytest.approx([2 / 0.004, 2 / 0.002, 2 / 0.002])
    assert all(r["max_tokens"] == 100 for r in rates.values())


def test_a_failed_request_names_its_server(monkeypatch):
    def fake_round(base_url, model, batch, max_tokens):
        if base_url == "bad":
            raise ConnectionError("refused")
        return steady(0.001, max_tokens)

    monkeypatch.setattr(e2e_common, "stream_round", fake_round)
    with pytest.raises(e2e_common.ServerFailed, match="ConnectionError: refused") as failed:
        e2e_common.steady_decode_together({"ok": "ok", "bad": "bad"}, "m", [[1], [2]], 100, warmup_tokens=4)
    assert failed.value.name == "bad"


def test_each_server_gets_its_share_of_the_memory_and_the_workload_says_interleaved():
    args = args_of("--interleave", "--mem-fraction", "0.7", "--vllm-backends", "CUSTOM,FLASHMLA")   # SGLang: 4
    assert flag(bench_serving.server_command("vllm", "py", Path("/m"), "CUSTOM", args, 1),
                "--gpu-memory-utilization") == "0.35"
    sglang = bench_serving.server_command("sglang", "py", Path("/m"), "mla_backend", args, 1)
    assert flag(sglang, "--mem-fraction-static") == "0.175" and "--sleep-on-idle" in sglang   # no idle spinning
    alone = bench_serving.server_command("sglang", "py", Path("/m"), "mla_backend", args_of("--mem-fraction", "0.7"), 1)
    assert flag(alone, "--mem-fraction-static") == "0.7" and "--sleep-on-idle" not in alone
    assert bench_serving.workload(args)["interleave"] is True
    assert "interleave" not in bench_serving.workload(args_of())   # earlier results keep their key


def test_a_dry_run_prints_the_shared_memory_fraction(capsys):
    assert bench_serving.main(["--dry-run", "--engines", "vllm", "--vllm-backends", "CUSTOM,FLASHMLA",
                               "--interleave", "--mem-fraction", "0.8", "--vllm-python", "py"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "serve" in line]
    assert len(lines) == 2 and all("--gpu-memory-utilization 0.4" in line for line in lines)


def test_interleaved_servers_are_measured_together_and_a_failing_one_is_left_out(monkeypatch, tmp_path):
    started, visits = [], []

    def fake_start(engine, python, model, backend, args, log, beside_others=False):
        command_share = args.mem_fraction / float(flag(bench_serving.server_command(engine, python, model, backend,
                                                                                    args, 1), "--mem-fraction-static"))
        started.append((backend, round(command_share), beside_others))
        command = lambda port: [sys.executable, str(FAKE), "--port", str(port), "--flavor", backend,  # noqa: E731
                                *(["--fail"] if backend == "triton" else [])]
        return e2e_common.start_engine_server("sglang", command, log, beside_others=True)

    real_round = e2e_common.stream_round

    def recording_round(base_url, model, batch, max_tokens):
        visits.append(base_url)
        return real_round(base_url, model, batch, max_tokens)

    monkeypatch.setattr(bench_serving, "start_server", fake_start)
    monkeypatch.setattr(e2e_common, "stream_round", recording_round)
    monkeypatch.setattr(e2e_common, "vocabulary", lambda model: (100, set()))
    args = args_of("--engines", "sglang", "--sglang-backends", "flashmla,triton,mla_backend", "--interleave",
                   "--prompt-lens", "8", "--concurrency", "2", "--warmup-tokens", "4", "--decode-tokens", "64",
                   "--min-window-tokens", "16", "--repeats", "2", "--startup-timeout", "60")
    pinned, real_pin = [], e2e_common.Server.pin

    def recording_pin(server, cores):
        real_pin(server, cores)
        pinned.append(sorted(os.sched_getaffinity(server.proc.pid)))

    monkeypatch.setattr(e2e_common.Server, "pin", recording_pin)
    one_core = host_cpus.choose(str(host_cpus.allowed_cpus()[0]))
    *_, (results, errors) = bench_serving.interleaved_runs("sglang", sys.executable, tmp_path, args, tmp_path, one_core)
    assert started == [("flashmla", 3, False), ("triton", 3, True), ("mla_backend", 3, True)]
    assert pinned == [one_core["cpus"], one_core["cpus"]]          # each server once up; the failed one never
    assert set(errors) == {"triton"} and "did not come up" in errors["triton"]
    assert set(results) == {"flashmla", "mla_backend"}
    for backend, result in results.items():
        (point,) = result["points"]
        assert (point["prompt_len"], point["concurrency"], len(point["rounds_tokens_per_s"])) == (8, 2, 2)
        assert point["decode_tokens_per_s"] > 0 and result["startup_s"] >= 0 and "cuda_graphs" in result
    hosts = [url.split("/v1/")[0] for url in visits]
    first, second = hosts[0], hosts[1]
    assert first != second and hosts == [first, second, first, second, second, first]   # warm-ups, then rotated


def kept_point(length: int, c: int, rate: float) -> dict:
    return {"prompt_len": length, "concurrency": c, "decode_tokens_per_s": rate, "rounds_tokens_per_s": [rate]}


def two_point_run(monkeypatch, backends: str, on_round):
    """An interleaved run of the stand-in servers of `backends` over two points (8 x 2, 16 x 2): (its args, {base
    URL: backend} in the order started); on_round(backend, batch) is called before each round (it may raise)."""
    urls = {}

    def fake_start(engine, python, model, backend, args, log, beside_others=False):
        command = lambda port: [sys.executable, str(FAKE), "--port", str(port), "--flavor", backend]  # noqa: E731
        server = e2e_common.start_engine_server("sglang", command, log, beside_others=True)
        urls[server.base_url + "/v1/"] = backend
        return server

    real_round = e2e_common.stream_round

    def watched_round(base_url, model, batch, max_tokens):
        on_round(urls[base_url], batch)
        return real_round(base_url, model, batch, max_tokens)

    monkeypatch.setattr(bench_serving, "start_server", fake_start)
    monkeypatch.setattr(e2e_common, "stream_round", watched_round)
    monkeypatch.setattr(e2e_common, "vocabulary", lambda model: (100, set()))
    monkeypatch.setattr(e2e_common.Server, "pin", lambda server, cores: None)
    args = args_of("--engines", "sglang", "--sglang-backends", backends, "--interleave", "--prompt-lens", "8", "16",
                   "--concurrency", "2", "--warmup-tokens", "4", "--decode-tokens", "64", "--min-window-tokens", "16",
                   "--repeats", "2", "--startup-timeout", "60")
    return args, urls


def test_an_interleaved_run_cut_short_resumes_with_the_points_it_had_not_finished(monkeypatch, tmp_path):
    """The earlier run kept 8 x 2 for both servers; this one starts them again and measures only 16 x 2."""
    measured_lengths = []
    args, urls = two_point_run(monkeypatch, "flashmla,mla_backend",
                               lambda backend, batch: measured_lengths.append(len(batch[0])))
    kept = bench_serving.InterleavedPoints(tmp_path / "interleaved_points.json")
    kept.add((8, 2), {"flashmla": kept_point(8, 2, 100.0), "mla_backend": kept_point(8, 2, 120.0)}, 3.0)
    *_, (results, errors) = bench_serving.interleaved_runs("sglang", sys.executable, tmp_path, args, tmp_path, {})
    assert list(urls.values()) == ["flashmla", "mla_backend"] and errors == {}   # both started again
    assert set(measured_lengths) == {16}                                # 8 x 2 was not measured again
    for backend, rate in (("flashmla", 100.0), ("mla_backend", 120.0)):
        first, second = results[backend]["points"]
        assert first == kept_point(8, 2, rate) and (second["prompt_len"], second["concurrency"]) == (16, 2)
        assert results[backend]["startup_s"] >= 0 and results[backend]["requests_s"] > 3.0
    again = bench_serving.InterleavedPoints(tmp_path / "interleaved_points.json")
    assert again.has((8, 2)) and again.has((16, 2))


def test_an_interleaved_run_whose_points_are_all_kept_starts_no_server(monkeypatch, tmp_path):
    monkeypatch.setattr(bench_serving, "start_server", lambda *a, **k: pytest.fail("a server was started"))
    args = args_of("--engines", "sglang", "--sglang-backends", "flashmla,mla_backend", "--interleave",
                   "--prompt-lens", "8", "--concurrency", "2")
    kept = bench_serving.InterleavedPoints(tmp_path / "interleaved_points.json")
    kept.add((8, 2), {"flashmla": kept_point(8, 2, 100.0), "mla_backend": kept_point(8, 2, 120.0)}, 3.0)
    *_, (results, errors) = bench_serving.interleaved_runs("sglang", sys.executable, tmp_path, args, tmp_path, {})
    assert errors == {} and results["mla_backend"]["points"] == [kept_point(8, 2, 120.0)]


def test_a_server_that_dies_at_a_later_point_keeps_its_earlier_points_and_reports_after_each_point(monkeypatch,
                                                                                                   tmp_path):
    """A server that dies at the second point, as SGLang's flashinfer server did on the H200 (at 64 x 4096 tokens,
    four servers sharing the GPU): its first point stays in the results, its error carries the end of its server's
    output, and each point's results are reported as soon as it is measured (a run cut short has written them)."""
    def dying(backend, batch):
        if backend == "flashinfer" and len(batch[0]) == 16:
            raise ConnectionError("Server disconnected without sending a response.")

    args, _ = two_point_run(monkeypatch, "mla_backend,flashinfer", dying)
    reports = list(bench_serving.engine_runs("sglang", sys.executable, tmp_path, args, tmp_path, {}))
    assert len(reports) == 2                                            # one per point
    (first, first_errors), (last, errors) = reports
    assert first_errors == {} and all(len(first[b]["points"]) == 1 for b in ("mla_backend", "flashinfer"))
    assert set(errors) == {"flashinfer"} and "ConnectionError: Server disconnected" in errors["flashinfer"]
    assert "flashinfer's last output" in errors["flashinfer"] and "--flavor flashinfer" in errors["flashinfer"]
    assert [p["prompt_len"] for p in last["flashinfer"]["points"]] == [8]
    assert [p["prompt_len"] for p in last["mla_backend"]["points"]] == [8, 16]
