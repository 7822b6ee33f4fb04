"""integration_tests/soak.py on CPU: the workload (reproducible, the asked-for mix, requests at the context limit
that fit it exactly, repeats spread over the run), the sending of each kind of request against a stand-in client,
the GPU memory sampling and its growth after warm-up, the repeat agreement and the verdict."""
from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

import soak

N, LONGEST = 1200, 4096
LIMITS = soak.Limits(LONGEST - 1, LONGEST)   # vLLM's at --max-model-len 4096


@pytest.fixture(scope="module")
def requests() -> list[soak.Request]:
    return soak.plan(N, LIMITS, seed=0)


def test_the_workload_is_the_same_for_a_seed_and_another_for_another(requests):
    assert soak.plan(N, LIMITS, seed=0) == requests
    assert soak.plan(N, LIMITS, seed=1) != requests


def test_the_workload_has_the_asked_for_counts(requests):
    kinds = Counter(r.kind for r in requests)
    assert len(requests) == N and [r.index for r in requests] == list(range(N))
    assert kinds["repeat"] == soak.REPEAT_PROMPTS * soak.REPEAT_TIMES
    assert 0.08 <= kinds["cancel"] / N <= 0.12
    assert kinds["limit"] >= 10 and kinds["plain"] > N / 2


def test_every_tenth_including_the_warmup_has_every_kind(requests):
    for tenth in range(10):
        assert set(r.kind for r in requests[tenth * N // 10:(tenth + 1) * N // 10]) == {
            "plain", "limit", "cancel", "repeat"}, tenth


def test_lengths_span_a_few_tokens_to_the_limit_and_limit_requests_fit_it_exactly(requests):
    assert all(1 <= r.prompt_len and 1 <= r.max_tokens <= soak.MAX_OUTPUT for r in requests)
    assert all(r.prompt_len + r.max_tokens <= LONGEST for r in requests)
    limit = [r for r in requests if r.kind == "limit"]
    assert all(r.prompt_len + r.max_tokens == LONGEST for r in limit)
    assert limit[0].max_tokens == 1 and limit[0].prompt_len == LONGEST - 1  # the longest prompt, in the warm-up
    others = [r.prompt_len for r in requests if r.kind != "limit"]
    assert min(others) <= 4 and max(others) > LONGEST / 2
    outputs = [r.max_tokens for r in requests if r.kind == "plain"]
    assert min(outputs) <= 5 and max(outputs) >= soak.MAX_OUTPUT - 5


def test_the_longest_request_is_what_each_engine_accepts():
    assert soak.engine_limits("vllm", 4096) == LIMITS
    assert soak.engine_limits("sglang", 4096) == soak.Limits(4089, 4094)


def test_sglang_limit_requests_stay_inside_both_of_its_limits():
    limits = soak.engine_limits("sglang", 4096)
    requests = soak.plan(N, limits, seed=0)
    assert all(r.prompt_len <= limits.prompt and r.prompt_len + r.max_tokens <= limits.request for r in requests)
    limit = [r for r in requests if r.kind == "limit"]
    assert limit[0].prompt_len == limits.prompt and limit[0].max_tokens == 1
    assert all(r.prompt_len + r.max_tokens == limits.request for r in limit if r.max_tokens >= 4)


def test_cancelled_requests_ask_for_more_tokens_than_they_read(requests):
    for r in (r for r in requests if r.kind == "cancel"):
        lo, hi = soak.CANCEL_CHUNKS
        assert lo <= r.cancel_after <= hi and r.max_tokens >= 64


def test_each_repeated_prompt_is_sent_once_in_each_stretch_of_the_run(requests):
    repeats = [r for r in requests if r.kind == "repeat"]
    by_prompt: dict[int, list[soak.Request]] = {}
    for r in repeats:
        by_prompt.setdefault(r.repeat_of, []).append(r)
    assert sorted(by_prompt) == list(range(soak.REPEAT_PROMPTS))
    for sends in by_prompt.values():
        assert [r.index * soak.REPEAT_TIMES // N for r in sends] == list(range(soak.REPEAT_TIMES))
        assert len({(r.prompt_len, r.max_tokens) for r in sends}) == 1 and sends[0].max_tokens == soak.REPEAT_TOKENS
        assert len({tuple(soak.prompt_of(r, 0, 258, {256, 257})) for r in sends}) == 1


def test_prompts_are_random_ids_of_the_planned_length_without_special_tokens(requests):
    ids = [soak.prompt_of(r, 0, 258, {256, 257}) for r in requests[:50]]
    assert [len(p) for p in ids] == [r.prompt_len for r in requests[:50]]
    assert {t for p in ids for t in p} <= set(range(256))
    long = [p for p in ids if len(p) > 20]
    assert len({tuple(p) for p in long}) == len(long)
    assert soak.prompt_of(requests[0], 0, 258, set()) != soak.prompt_of(requests[0], 1, 258, set())


def test_each_pass_sends_new_prompts_but_the_same_repeated_ones(requests):
    plain = next(r for r in requests if r.kind == "plain" and r.prompt_len > 20)
    repeat = next(r for r in requests if r.kind == "repeat")
    assert soak.prompt_of(plain, 0, 258, set(), pass_index=1) != soak.prompt_of(plain, 0, 258, set())
    assert soak.prompt_of(repeat, 0, 258, set(), pass_index=1) == soak.prompt_of(repeat, 0, 258, set())
    firsts = soak.first_sends(requests)
    assert [r.repeat_of for r in firsts] == list(range(soak.REPEAT_PROMPTS)) and all(r.kind == "repeat" for r in firsts)


def test_prompts_sent_alone_before_and_after_the_load_must_match():
    def alone(outputs):
        return [soak.Outcome(i, "completed", 0.0, len(o), o) for i, o in enumerate(outputs)]

    same = soak.alone_agreement(alone([[1, 2, 3], [4, 5]]), alone([[1, 2, 3], [4, 5]]))
    assert same == {"prompts": 2, "all_identical": True, "differ": [], "errors": []}
    differ = soak.alone_agreement(alone([[1, 2, 3], [4, 5]]), alone([[1, 2, 9], [4, 5]]))
    assert not differ["all_identical"] and differ["differ"] == [{"prompt": 0, "common_prefix": 2, "tokens": 3}]
    failed = [soak.Outcome(0, "error", 0.0, error="boom")]
    assert not soak.alone_agreement(failed, failed)["all_identical"]


def test_the_prefix_cache_flush_is_each_engines_endpoint():
    assert soak.FLUSH_PATH == {"sglang": "/flush_cache", "vllm": "/reset_prefix_cache"}
    assert soak.SERVER_ENV["vllm"] == {"VLLM_SERVER_DEV_MODE": "1"}   # vLLM serves the endpoint only then


def test_too_few_requests_are_refused():
    with pytest.raises(ValueError):
        soak.plan(2 * soak.REPEAT_PROMPTS * soak.REPEAT_TIMES - 1, LIMITS, 0)
    with pytest.raises(ValueError):
        soak.plan(N, soak.Limits(soak.MAX_OUTPUT, soak.MAX_OUTPUT), 0)


# ---------------------------------------------------------------------------------------------- sending


class Stream:
    def __init__(self, reasons: list[str | None]):
        self.chunks = [SimpleNamespace(choices=[SimpleNamespace(finish_reason=r)]) for r in reasons]
        self.read, self.closed = 0, False

    def __iter__(self):
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self):
        self.closed = True


class Client:
    """Answers like an engine's completions API: `generated` tokens, or the stream it was given."""

    def __init__(self, generated: int | None = None, stream: Stream | None = None, fail: bool = False):
        self.generated, self.stream, self.fail, self.calls = generated, stream, fail, []
        self.completions = self

    def create(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail:
            raise ConnectionError("server gone")
        if kwargs.get("stream"):
            return self.stream
        n = self.generated if self.generated is not None else kwargs["max_tokens"]
        return SimpleNamespace(usage=SimpleNamespace(completion_tokens=n),
                               choices=[SimpleNamespace(token_ids=list(range(n)))])


def test_a_plain_request_is_greedy_ignores_eos_and_must_get_its_tokens():
    request = soak.Request(3, "plain", 5, 7)
    client = Client()
    outcome = soak.send(client, "vllm", request, [1, 2, 3, 4, 5])
    assert (outcome.status, outcome.tokens, outcome.error) == ("completed", 7, None)
    call = client.calls[0]
    assert call["prompt"] == [1, 2, 3, 4, 5] and call["temperature"] == 0.0 and call["extra_body"]["ignore_eos"]
    short = soak.send(Client(generated=6), "vllm", request, [1])
    assert short.status == "error" and "asked for 7 tokens, the server generated 6" in short.error


def test_a_cancelled_request_closes_its_stream_after_its_chunks():
    stream = Stream([None] * 10)
    outcome = soak.send(Client(stream=stream), "sglang", soak.Request(0, "cancel", 5, 100, cancel_after=3), [1])
    assert outcome.status == "cancelled" and stream.read == 3 and stream.closed


def test_a_stream_that_ends_first_completed_and_one_that_stops_early_failed():
    done = soak.send(Client(stream=Stream([None, "length"])), "sglang", soak.Request(0, "cancel", 5, 64, 4), [1])
    assert done.status == "completed" and done.tokens == 64
    stopped = soak.send(Client(stream=Stream([None, "stop"])), "sglang", soak.Request(0, "cancel", 5, 64, 4), [1])
    assert stopped.status == "error" and "'stop'" in stopped.error


def test_a_repeat_returns_its_token_ids_and_a_failure_is_recorded():
    outcome = soak.send(Client(), "sglang", soak.Request(0, "repeat", 5, 4, repeat_of=2), [1])
    assert outcome.status == "completed" and outcome.output == [0, 1, 2, 3]
    failed = soak.send(Client(fail=True), "sglang", soak.Request(9, "plain", 5, 4), [1])
    assert failed.status == "error" and failed.error.startswith("request 9 (plain") and "server gone" in failed.error


# ---------------------------------------------------------------------------------------------- memory


def test_gpu_memory_is_summed_over_the_visible_gpus(monkeypatch):
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return SimpleNamespace(stdout="1000\n2500\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert soak.e2e_common.query_memory_mib() == 3500 and seen[0][-1] == "--id=2,3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    soak.e2e_common.query_memory_mib()
    assert not any(a.startswith("--id") for a in seen[1])

    def missing(cmd, **kwargs):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", missing)
    assert soak.e2e_common.query_memory_mib() is None


def test_the_sampler_samples_until_stopped():
    values = iter([100, None, 120, 130, 140, 150, 160, 170, 180, 190] + [200] * 1000)
    sampler = soak.MemorySampler(interval=0.01, query=lambda: next(values))
    sampler.start()
    time.sleep(0.1)
    samples = sampler.stop()
    assert len(samples) >= 3 and samples[0][1] == 100 and samples[1][1] == 120
    assert all(a[0] <= b[0] for a, b in zip(samples, samples[1:]))
    sampler = soak.MemorySampler(interval=60, query=lambda: 7)
    sampler.start()
    assert len(sampler.stop()) == 2   # the first sample and one when stopped, however short the run


def test_growth_is_the_later_peak_over_the_warmup_peak():
    samples = [(0.0, 500), (2.0, 9000), (4.0, 9100), (6.0, 9300), (8.0, 9200)]
    memory = soak.memory_summary(samples, warmup_done=3.0)
    assert memory == {"samples": 5, "first_mib": 500, "last_mib": 9200, "warmup_mib": 9000,
                      "max_after_warmup_mib": 9300, "growth_mib": 300}
    assert soak.memory_summary(samples, warmup_done=5.0)["growth_mib"] == 200
    assert soak.memory_summary([(0.0, 9500), (4.0, 9300)], warmup_done=3.0)["growth_mib"] == 0
    assert soak.memory_summary(samples, warmup_done=9.0)["growth_mib"] is None
    assert soak.memory_summary([], warmup_done=0.0)["growth_mib"] is None


# ---------------------------------------------------------------------------------------------- results


def outcomes_for(requests, repeat_output=lambda r: [1, 2, 3]):
    out = []
    for r in requests:
        if r.kind == "cancel":
            out.append(soak.Outcome(r.index, "cancelled", 0.0))
        else:
            out.append(soak.Outcome(r.index, "completed", 0.0, r.max_tokens,
                                    repeat_output(r) if r.kind == "repeat" else None))
    return out


def test_counts_and_agreement_of_a_clean_run(requests):
    outcomes = outcomes_for(requests)
    counts = soak.tally(outcomes)
    kinds = Counter(r.kind for r in requests)
    assert counts["sent"] == N and counts["cancelled"] == kinds["cancel"] and counts["errors"] == 0
    assert counts["completed"] == N - kinds["cancel"]
    assert counts["tokens_generated"] == sum(r.max_tokens for r in requests if r.kind != "cancel")
    repeats = soak.repeat_agreement(requests, outcomes)
    assert repeats == {"prompts": soak.REPEAT_PROMPTS, "sends": kinds["repeat"], "all_identical": True,
                       "mismatches": []}
    memory = {"growth_mib": 10}
    assert soak.verdict(counts, memory, {"prompts": 20, "all_identical": True, "differ": []}, 256) == []


def test_a_repeat_that_differs_is_reported_with_its_common_prefix(requests):
    first_send = {}

    def output(r):
        first_send.setdefault(r.repeat_of, r.index)
        return [1, 2, 3] if r.repeat_of != 4 or r.index == first_send[4] else [1, 2, 9]

    repeats = soak.repeat_agreement(requests, outcomes_for(requests, output))
    assert not repeats["all_identical"]
    assert repeats["mismatches"] == [{"prompt": 4, "sends": soak.REPEAT_TIMES, "distinct": 2,
                                      "shortest_common_prefix": 2}]


def test_the_verdict_names_each_failure():
    clean = {"sent": 10, "completed": 9, "cancelled": 1, "errors": 0}
    same = {"prompts": 20, "all_identical": True, "differ": []}
    assert soak.verdict(clean, {"growth_mib": 256}, same, 256) == []
    failures = soak.verdict({"sent": 10, "completed": 7, "cancelled": 1, "errors": 1}, {"growth_mib": 300},
                            {"prompts": 20, "all_identical": False, "differ": [{}]}, 256)
    assert len(failures) == 4 and "1 requests failed" in failures[0] and "!= sent 10" in failures[1]
    assert "300 MiB" in failures[2] and "1 of 20 prompts sent alone" in failures[3]
    unflushed = soak.verdict(clean, {"growth_mib": 0}, same, 256, flush_error="/flush_cache: HTTP 400")
    assert len(unflushed) == 1 and "/flush_cache: HTTP 400" in unflushed[0]
    assert soak.verdict(clean, {"growth_mib": None}, same, 256) == ["no GPU memory samples after warm-up"]


def test_the_server_is_ours_with_page_64_and_cuda_graphs_on():
    args = soak.parse_args(["--engine", "sglang", "--concurrency", "8", "--workdir", "/w"])
    assert args.out == Path("/w/soak_sglang.json") and args.max_growth_mib == 256
    assert args.requests * args.passes == 1200 and args.passes == 2
    cmd = soak.server_command(args, Path("/m"), 1234)
    assert cmd[cmd.index("--attention-backend") + 1] == "mla_backend" and cmd[cmd.index("--page-size") + 1] == "64"
    assert cmd[cmd.index("--context-length") + 1] == "4096" and cmd[cmd.index("--max-running-requests") + 1] == "8"
    assert not any("disable-cuda-graph" in a or "eager" in a for a in cmd)
    cmd = soak.server_command(soak.parse_args(["--engine", "vllm"]), Path("/m"), 1234)
    assert cmd[cmd.index("--attention-backend") + 1] == "CUSTOM" and cmd[cmd.index("--block-size") + 1] == "64"
    assert cmd[cmd.index("--max-model-len") + 1] == "4096" and cmd[cmd.index("--max-num-seqs") + 1] == "32"
    assert not any("compilation" in a or "eager" in a for a in cmd)
