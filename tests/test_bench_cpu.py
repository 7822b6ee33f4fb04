"""CPU tests of the benchmark's pure-Python parts: work formulas, configs and the issue grid, input sets and
varlen seqlens, the reference check, the ceiling rule, the best peer and geomean, the results files, the
supervisor's crash bookkeeping (with a fake child), the peer bundle, the vLLM import shim, the probe rounds'
summary, the power probe's nvidia-smi parsing and the ncu SASS counters' summary. The GPU timing
itself runs on the box; here CPU stand-ins replace graph capture and timing."""

import dataclasses
import json
import math
import random
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

import bench_ceilings
import bench_decode as bench
import bench_report
import bench_supervisor
import ncu_sass_summary
import peers
import peers_bundle
import power_probe
import probe_decode
import probe_summary
import wide_diagnostics

from mla_backend.cli import bundle
from mla_backend.kernel_facts import current_gpu_is_hopper
from mla_backend.reference import mla_decode_reference
from mla_backend.tile_scheduler import part_pieces

CEILINGS = {"copy_gbps": 4000.0, "matmul_tflops": 700.0, "copy": "copy of 2 GiB", "matmul": "8192^3 bf16",
            "statistic": "median of 10", "slack": 1.03}


# --- work formulas ------------------------------------------------------------------------------------


def test_bytes_and_flops_reproduce_design_peer_table():
    # b128/s4096/h16/q1 at 221.2 µs -> 2751 GB/s, 83 TFLOPS.
    sum_seqlen = 128 * 4096
    nbytes = bench.decode_bytes(sum_seqlen, b=128, s_q=1, h_q=16)
    flops = bench.decode_flops(sum_seqlen, s_q=1, h_q=16)
    assert nbytes == (sum_seqlen * 576 + 128 * 1 * 16 * (576 + 512)) * 2
    assert flops == 2 * 16 * 1 * (576 + 512) * sum_seqlen
    m = bench.metrics(221.2, nbytes, flops)
    assert m["gbps"] == pytest.approx(2751, abs=0.5) and m["tflops"] == pytest.approx(83, abs=0.5)
    # b132/s8192/h128/q2, FlashMLA 987.5 µs -> 610 TFLOPS.
    sum_seqlen = 132 * 8192
    m = bench.metrics(987.5, bench.decode_bytes(sum_seqlen, 132, 2, 128), bench.decode_flops(sum_seqlen, 2, 128))
    assert m["tflops"] == pytest.approx(610, abs=0.5)


def test_kv_bytes_count_whole_pages():
    assert bench.kv_cache_bytes([1, 64, 65]) == (1 + 1 + 2) * 64 * 576 * 2
    assert bench.kv_cache_bytes([0]) == 0


def test_input_sets_keep_kv_out_of_l2():
    l2 = 50 * 1000 * 1000
    for kv in (1, 10**6, 37_748_736, 10**8, 5 * 10**9):
        sets = bench.num_input_sets(kv, l2)
        assert sets >= bench.MIN_INPUT_SETS and sets * kv > bench.L2_MULTIPLE * l2
    assert bench.num_input_sets(5 * 10**9, l2) == 4
    assert bench.num_input_sets(37_748_736, l2) == 6  # b32/s1024: 36 MiB of KV per set


# --- configs --------------------------------------------------------------------------------------------


def test_config_key_round_trips():
    for key in ("b128/s4096/h16/q1", "b1/s32768/h128/q4/varlen"):
        assert bench.Config.parse(key).key == key
    assert bench.Config.parse("b132/s8192/h128/q2") == bench.Config(132, 8192, 128, 2, False)


@pytest.mark.parametrize("bad", ["b128/s4096/h16", "128/4096/16/1", "b0/s1/h1/q1", "b1/s1/h1/q1/fixed", ""])
def test_config_parse_rejects_malformed_keys(bad):
    with pytest.raises(ValueError):
        bench.Config.parse(bad)


def test_parse_configs_accepts_commas_and_spaces():
    configs = bench.parse_configs("b1/s1024/h16/q1, b8/s8192/h16/q1 b2/s64/h1/q2/varlen")
    assert [c.key for c in configs] == ["b1/s1024/h16/q1", "b8/s8192/h16/q1", "b2/s64/h1/q2/varlen"]


def test_quick_is_exactly_the_design_table():
    keys = [c.key for c in bench.quick_configs()]
    assert keys == ["b128/s4096/h16/q1", "b128/s4096/h128/q1", "b128/s4096/h128/q2", "b132/s8192/h128/q2",
                    "b64/s16384/h16/q1", "b32/s1024/h16/q1", "b1/s32768/h128/q1", "b1/s32768/h16/q1",
                    "b8/s8192/h16/q1"]


def test_issue_grid_is_the_reported_shapes_and_four_varlen_twins():
    configs = bench.selected_configs(bench.parse_args(["--issue-grid"]))
    fixed = {c.key for c in configs if not c.varlen}
    assert fixed == {"b128/s4096/h16/q1", "b128/s4096/h32/q1", "b128/s4096/h64/q1", "b128/s4096/h128/q1",
                     "b128/s4096/h128/q2", "b132/s8192/h128/q2", "b64/s16384/h16/q1", "b64/s2048/h16/q2",
                     "b32/s1024/h16/q1", "b8/s8192/h16/q1", "b4/s4096/h16/q1", "b1/s32768/h16/q1",
                     "b1/s32768/h128/q1"}
    twins = [c.key for c in configs if c.varlen]
    assert twins == ["b128/s4096/h16/q1/varlen", "b128/s4096/h128/q2/varlen", "b32/s1024/h16/q1/varlen",
                     "b8/s8192/h16/q1/varlen"]
    assert len(configs) == len(set(configs)) == 17
    for twin in twins:  # each twin right after its fixed-length config
        keys = [c.key for c in configs]
        assert keys.index(twin) == keys.index(twin.removesuffix("/varlen")) + 1
    with pytest.raises(SystemExit):
        bench.parse_args(["--issue-grid", "--quick"])


def test_issue_grid_lists_on_cpu(capsys):
    assert bench.main(["--issue-grid", "--list"]) == 0
    assert capsys.readouterr().out.split() == list(bench.ISSUE_GRID)


def test_full_grid_is_design_grid_fixed_and_varlen():
    args = bench.parse_args([])
    configs = bench.selected_configs(args)
    assert len(configs) == 6 * 5 * 4 * 3 * 2
    assert {c.b for c in configs} == {1, 8, 32, 64, 128, 132}
    assert {c.s_k for c in configs} == {1024, 4096, 8192, 16384, 32768}
    assert {c.h_q for c in configs} == {16, 32, 64, 128} and {c.s_q for c in configs} == {1, 2, 4}
    assert sum(c.varlen for c in configs) == len(configs) // 2


def test_cli_selection_and_varlen_modes():
    assert len(bench.selected_configs(bench.parse_args(["--quick"]))) == 9
    both = bench.selected_configs(bench.parse_args(["--quick", "--varlen"]))
    assert len(both) == 18 and both[1].key == "b128/s4096/h16/q1/varlen"
    only = bench.selected_configs(bench.parse_args(["--quick", "--varlen", "only"]))
    assert all(c.varlen for c in only) and len(only) == 9
    sliced = bench.selected_configs(bench.parse_args(["--b", "1", "--s-k", "1024", "--h-q", "16", "--s-q", "1"]))
    assert [c.key for c in sliced] == ["b1/s1024/h16/q1", "b1/s1024/h16/q1/varlen"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--reps", "10"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--render"])  # needs --card


def test_peer_choices_include_both_fa3_modes():
    assert bench.parse_args(["--only", "fa3_mla", "fa3_mla_default"]).only == ["fa3_mla", "fa3_mla_default"]
    assert peers.PEER_NAMES == ("mla_backend", "flashmla", "fa3_mla", "fa3_mla_default", "triton_mla",
                                "flashinfer_mla", "flashmla_sglang")


# --- seqlens, input sets, check rows ----------------------------------------------------------------------


def test_fixed_seqlens():
    assert bench.make_seqlens(bench.Config(4, 1024, 16, 1)) == [1024] * 4


@pytest.mark.parametrize("key", ["b128/s4096/h16/q1/varlen", "b128/s4096/h128/q2/varlen",
                                 "b32/s1024/h16/q1/varlen", "b8/s8192/h16/q1/varlen", "b4/s64/h1/q1/varlen"])
def test_varlen_seqlens_spread_around_the_mean_with_empty_requests(key):
    config = bench.Config.parse(key)
    seqlens = bench.make_seqlens(config)
    assert seqlens == bench.make_seqlens(config)  # seeded by the config
    assert len(seqlens) == config.b
    assert all(0 <= s <= 2 * config.s_k for s in seqlens)
    assert seqlens.count(0) >= 1  # b >= 4: at least one empty request
    assert seqlens.count(0) <= max(1, config.b // bench.EMPTY_REQUESTS_PER) + config.b // 10
    if config.b >= 32:
        assert len(set(seqlens)) > config.b // 2
        assert 0.7 * config.s_k < sum(seqlens) / config.b < 1.2 * config.s_k


def test_small_varlen_batches_need_no_empty_request_but_never_are_all_empty():
    for b in (1, 2, 3):
        for s_k in (64, 1000, 4096):
            seqlens = bench.make_seqlens(bench.Config(b, s_k, 16, 1, varlen=True))
            assert len(seqlens) == b and any(seqlens)


def test_input_set_is_order_one_with_permuted_pages():
    config = bench.Config(4, 100, 2, 1, varlen=True)
    seqlens = [100, 1, 0, 130]
    batch = bench.make_input_set(config, seqlens, seed=7, device=torch.device("cpu"))
    assert batch.q.shape == (4, 1, 2, 576) and batch.q.dtype == torch.bfloat16
    assert batch.k_cache.shape == (2 + 1 + 0 + 3, 64, 576) and batch.k_cache.dtype == torch.bfloat16
    for t in (batch.q.float(), batch.k_cache.float()):
        assert 0.9 < float(t.std()) < 1.1 and float(t.abs().max()) > 2.5  # randn, neither scaled nor clamped
    used = torch.cat([batch.block_table[0, :2], batch.block_table[1, :1], batch.block_table[3, :3]])
    assert sorted(used.tolist()) == list(range(6))
    assert batch.cache_seqlens.tolist() == seqlens and batch.max_seqlen_k == 130
    # the cache as an engine leaves it: finite everywhere, table entries past a request's pages 0
    assert not batch.k_cache.isnan().any() and batch.block_table[2].tolist() == [0] * batch.block_table.shape[1]
    assert (batch.b, batch.s_q, batch.h_q) == (4, 1, 2)


def test_reference_rows_include_every_empty_request_and_spread_the_rest():
    seqlens = [10] * 100
    seqlens[7] = seqlens[50] = 0
    seqlens[33] = 999
    rows = bench.reference_rows(seqlens)
    assert {7, 50, 33, 0, 99} <= set(rows)  # empties, the longest, the first and last non-empty
    assert len([r for r in rows if seqlens[r] > 0]) == bench.CHECK_ROWS
    assert rows == sorted(set(rows))
    assert len(bench.reference_rows([4096] * 128)) == bench.CHECK_ROWS
    assert bench.reference_rows([5, 6]) == [0, 1]
    assert bench.reference_rows([0, 0, 3]) == [0, 1, 2]


# --- the reference check ------------------------------------------------------------------------------------


def _batch_and_reference(key="b6/s150/h2/q2/varlen", seed=3):
    config = bench.Config.parse(key)
    seqlens = bench.make_seqlens(config)
    batch = bench.make_input_set(config, seqlens, seed=seed, device=torch.device("cpu"))
    full_out, full_lse = mla_decode_reference(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens,
                                              512, batch.softmax_scale, batch.causal)
    return batch, seqlens, full_out, full_lse, bench.compute_reference(batch, bench.reference_rows(seqlens))


def test_relative_error():
    want = torch.tensor([3.0, 4.0])
    assert bench.relative_error(want, want) == 0.0
    assert bench.relative_error(torch.zeros(2), want) == pytest.approx(1.0)
    assert bench.relative_error(want * 1.01, want) == pytest.approx(0.01)
    assert bench.relative_error(torch.tensor([0.0, 0.5]), torch.zeros(2)) == pytest.approx(0.5)  # empty: absolute
    assert math.isnan(bench.relative_error(torch.tensor([math.nan, 4.0]), want))


def test_check_passes_a_correct_bf16_output_and_its_lse():
    batch, seqlens, out, lse, reference = _batch_and_reference()
    assert 0 in seqlens
    check = bench.check_against_reference(out.to(torch.bfloat16), lse, reference)
    assert check["passed"], check["problems"]
    assert check["rel_err_out"] < 5e-3 and check["lse_inf_where_empty"] is True
    assert check["rows"] == len(reference.rows)
    # base-2 lse (FlashInfer) converted; +inf stays +inf
    assert bench.check_against_reference(out, lse / math.log(2.0), reference, lse_base2=True)["passed"]
    assert bench.check_against_reference(out, None, reference)["passed"]


def test_check_fails_an_all_zero_or_skipped_output():
    batch, seqlens, out, lse, reference = _batch_and_reference()
    zeros = bench.check_against_reference(torch.zeros_like(out), None, reference)
    assert not zeros["passed"] and zeros["rel_err_out"] == pytest.approx(1.0)
    skipped_last = out.clone()
    skipped_last[max(i for i, s in enumerate(seqlens) if s > 0)] = 0
    assert not bench.check_against_reference(skipped_last, None, reference)["passed"]
    slightly_off = out * 1.05
    assert "out relative error" in bench.check_against_reference(slightly_off, None, reference)["problems"][0]


def test_check_fails_nan_anywhere_and_bad_lse():
    batch, seqlens, out, lse, reference = _batch_and_reference("b20/s100/h2/q2/varlen")
    unchecked = next(i for i in range(len(seqlens)) if i not in reference.rows)
    with_nan = out.clone()
    with_nan[unchecked, 0, 0, 0] = math.nan  # outside the compared rows: still caught
    check = bench.check_against_reference(with_nan, None, reference)
    assert not check["passed"] and check["nan_in_out"]
    assert check["problems"][0] == f"NaN in out in requests: {unchecked}"
    empty = seqlens.index(0)
    nan_where_empty = out.clone()
    nan_where_empty[empty] = math.nan  # what a kernel dividing 0 by 0 on an empty request writes
    problem = bench.check_against_reference(nan_where_empty, None, reference)["problems"][0]
    assert problem == f"NaN in out only in empty requests (seqlen 0): {empty}"
    shifted = lse.clone()
    shifted[torch.isfinite(shifted)] += 0.2
    assert any("lse max" in p for p in bench.check_against_reference(out, shifted, reference)["problems"])
    minus_inf = lse.clone()
    minus_inf[~torch.isfinite(minus_inf)] = -math.inf
    check = bench.check_against_reference(out, minus_inf, reference)
    assert check["passed"] and check["lse_inf_where_empty"] is False   # recorded, not a failure
    json.dumps(bench.check_against_reference(out * math.nan, lse, reference))  # NaN figures stay JSON-safe


def test_our_peer_runs_on_cpu_and_passes_the_check():
    batch, seqlens, out, lse, reference = _batch_and_reference("b5/s200/h4/q2/varlen")
    step = peers.MlaBackendPeer().prepare(batch)
    assert all(any(t is kept for kept in step.keepalive) for t in batch.tensors())
    got_out, got_lse = step()
    check = bench.check_against_reference(got_out, got_lse, reference)
    assert check["passed"], check["problems"]


def test_sglangs_flashmla_peer_plans_once_and_calls_sgl_kernel_as_sglangs_backend_does(monkeypatch):
    """flashmla_sglang over a stand-in sgl_kernel whose two functions are ours on CPU: the schedule made once in
    prepare with SGLang's arguments, then the legacy call per layer; it must pass the same check."""
    import types

    import mla_backend.ops as ops

    calls = []

    def get_mla_metadata(seqlens, rows, heads_k, is_fp8_kvcache=False):
        calls.append(("plan", rows, heads_k, is_fp8_kvcache))
        return ops.get_mla_metadata(seqlens, rows, heads_k)

    def flash_mla_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                               num_splits, softmax_scale, causal, descale_q=None, descale_k=None):
        calls.append(("decode", head_dim_v, descale_q, descale_k))
        return ops.mla_decode_with_kvcache(q, k_cache, block_table, cache_seqlens, head_dim_v,
                                           tile_scheduler_metadata, num_splits, softmax_scale=softmax_scale,
                                           causal=causal)

    package = types.ModuleType("sgl_kernel")
    flash_mla = types.ModuleType("sgl_kernel.flash_mla")
    flash_mla.get_mla_metadata, flash_mla.flash_mla_with_kvcache = get_mla_metadata, flash_mla_with_kvcache
    for name, module in (("sgl_kernel", package), ("sgl_kernel.flash_mla", flash_mla),
                         ("sgl_kernel.flashmla_ops", types.ModuleType("sgl_kernel.flashmla_ops"))):
        monkeypatch.setitem(sys.modules, name, module)
    batch, seqlens, out, lse, reference = _batch_and_reference("b5/s200/h4/q2/varlen")
    peer = peers.load_peers(None, names=("flashmla_sglang",))["flashmla_sglang"]
    assert peer.available, peer.error
    step = peer.prepare(batch)
    assert calls == [("plan", 2 * 4, 1, False)]
    got_out, got_lse = step()
    assert calls[1:] == [("decode", peers.HEAD_DIM_V, None, None)]
    assert bench.check_against_reference(got_out, got_lse, reference)["passed"]
    assert "fp8 cache" in peers.FlashMLASGLangFp8Peer.unsupported_reason(peer, batch)


def test_sglangs_flashmla_peer_is_unavailable_without_sgl_kernel(monkeypatch):
    monkeypatch.setitem(sys.modules, "sgl_kernel", None)   # import fails, as where SGLang is not installed
    for name, kv in (("flashmla_sglang", "bf16"), ("flashmla_sglang_fp8", "fp8")):
        peer = peers.load_peers(None, names=(name,), kv=kv)[name]
        assert not peer.available and "sgl_kernel" in peer.error


# --- ceilings --------------------------------------------------------------------------------------------


def test_floor_and_percent_of_floor():
    ceilings = {"copy_gbps": 4000.0, "matmul_tflops": 800.0}
    # 4 GB at 4000 GB/s = 1000 µs; 0.4 TFLOP at 800 TFLOPS = 500 µs: bytes bind
    assert bench_ceilings.floor_us(4 * 10**9, 4 * 10**11, ceilings) == pytest.approx(1000)
    assert bench_ceilings.floor_us(10**6, 8 * 10**11, ceilings) == pytest.approx(1000)  # flops bind
    assert bench_ceilings.pct_of_floor(2000, 1000) == pytest.approx(50)


def test_timing_loop_rotates_the_calls_and_pairs_an_event_with_each(monkeypatch):
    """bench_ceilings.time_calls_us on a stand-in clock: warm-up and timed calls in one rotation, one time per rep."""
    clock, log = [0.0], []

    class Event:
        def __init__(self, enable_timing):
            self.t = None

        def record(self):
            self.t = clock[0]

        def elapsed_time(self, end):
            return end.t - self.t   # ms

    def call(name, ms):
        def run():
            log.append(name)
            clock[0] += ms
        return run

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: log.append(f"sleep {cycles}"))
    times = bench_ceilings.time_calls_us([call("a", 0.001), call("b", 0.003)], reps=4, warmup=3,
                                         host_lead_cycles_per_rep=10)
    assert log == ["b", "a", "b", "sleep 40", "a", "b", "a", "b"]  # the warm-up ends where the timed calls begin
    assert times == pytest.approx([1.0, 3.0, 1.0, 3.0])
    log.clear()
    assert bench_ceilings.time_op_us(call("c", 0.002), reps=2, warmup=1) == pytest.approx([2.0, 2.0])
    assert log == ["c", "c", "c"]



def test_a_time_above_a_measured_ceiling_is_a_harness_bug():
    ceilings = {"copy_gbps": 4244.0, "matmul_tflops": 700.0}
    nbytes = bench.decode_bytes(128 * 4096, 128, 1, 16)
    flops = bench.decode_flops(128 * 4096, 1, 16)
    # the H200 report: FA3-MLA 11.5 µs at b128/s4096/h16 = 52 TB/s
    reason = bench_ceilings.ceiling_violation(nbytes, flops, 11.5, ceilings)
    assert reason.startswith("above the measured ceiling: harness bug") and "GB/s" in reason
    at_copy_rate = nbytes / (4244.0 * 1e3)
    assert bench_ceilings.ceiling_violation(nbytes, flops, at_copy_rate / 1.02, ceilings) is None
    assert bench_ceilings.ceiling_violation(nbytes, flops, at_copy_rate / 1.04, ceilings) is not None
    one_tflop = 10**12  # in 1000 µs: 1000 TFLOPS > 1.03 x 700
    assert "TFLOPS" in bench_ceilings.ceiling_violation(10, one_tflop, 1000, ceilings)
    assert bench_ceilings.ceiling_violation(10, one_tflop, 1400, ceilings) is None  # 714 TFLOPS: within slack


def test_timed_entry_reports_floor_and_validity():
    check = {"passed": True, "rel_err_out": 0.003, "problems": []}
    nbytes, flops = 4 * 10**9, 10**11  # floor: 1000 µs of copy, 143 µs of matmul
    entry = bench.timed_entry([1100.0, 1250.0, 1200.0], nbytes, flops, CEILINGS, check)
    assert entry["us"] == 1200.0 and entry["us_min"] == 1100.0 and entry["valid"] is True
    assert entry["floor_us"] == pytest.approx(1000) and entry["pct_of_floor"] == pytest.approx(83.3, abs=0.1)
    assert entry["rel_err"] == 0.003 and "invalid_reason" not in entry and bench_report.is_counted(entry)
    fast = bench.timed_entry([100.0], nbytes, flops, CEILINGS, check)
    assert fast["valid"] is False and "harness bug" in fast["invalid_reason"] and fast["pct_of_floor"] > 100
    assert not bench_report.is_counted(fast) and bench_report.entry_status(fast) == "invalid"


# --- the per-config loop with CPU stand-ins for graphs and timing ----------------------------------------


class _FakeGraph:
    """Replays a step into the buffers that capture returned, like a CUDA graph does; its reset (the release) goes
    into the harness's event log as ("reset", peer, input set)."""

    def __init__(self, step, out, lse, us, peer, index, events):
        self.step, self.out, self.lse, self.us = step, out, lse, us
        self.peer, self.index, self.events = peer, index, events

    def replay(self):
        out, lse = self.step()
        self.out.copy_(out)
        if self.lse is not None:
            self.lse.copy_(lse)

    def reset(self):
        self.events.append(("reset", self.peer, self.index))


class _FakePeer(peers.Peer):
    """Computes the right answer (or a wrong one) on the CPU; `us` is what the fake timer reports."""

    def __init__(self, name, us=10.0, fail=None, scale=1.0, with_lse=True, shared_out=False):
        super().__init__()
        self.name, self.label, self.us, self.fail, self.scale = name, name, us, fail, scale
        self.with_lse, self.shared = with_lse, None if not shared_out else {}

    def _prepare(self, batch):
        if self.fail:
            raise RuntimeError(self.fail)
        out, lse = mla_decode_reference(batch.q, batch.k_cache, batch.block_table, batch.cache_seqlens, 512,
                                        batch.softmax_scale, batch.causal)
        out = (out * self.scale).to(torch.bfloat16)
        shared = self.shared

        def step():
            if shared is None:
                return out.clone(), lse.clone() if self.with_lse else None
            # every input set writes the same buffer: what freed-and-reused memory does to a graph's output
            buffer = shared.setdefault("out", torch.empty_like(out))
            buffer.copy_(out)
            return buffer, None

        return peers.with_keepalive(step, batch, out, lse)


def _fake_capture(peer, batches, events):
    captured = []
    for index, step in enumerate(bench.prepare_steps(peer, batches)):
        out, lse = step()
        captured.append(bench.CapturedStep(step, _FakeGraph(step, out, lse, peer.us, peer.name, index, events), out,
                                           lse))
    return captured


def _fake_time_replays(events):
    """Each call goes into the event log as ("time", peer, first input set, reps, warmup); every time is the peer's
    `us`."""
    def time_replays(graphs, reps, warmup):
        events.append(("time", graphs[0].peer, graphs[0].index, reps, warmup))
        return [graphs[0].us] * reps
    return time_replays


@pytest.fixture
def cpu_harness(monkeypatch):
    """CPU stand-ins for capture and timing; returns the event log of the timed slices and the graph releases."""
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(bench, "capture_steps", lambda peer, batches: _fake_capture(peer, batches, events))
    monkeypatch.setattr(bench, "time_replays", _fake_time_replays(events))
    return events


class _Progress:
    """The supervisor's progress log as a list of "<config> <peer> start|end" lines."""

    def __init__(self):
        self.lines = []

    def start(self, config, peer):
        self.lines.append(f"{config} {peer} start")

    def end(self, config, peer):
        self.lines.append(f"{config} {peer} end")


def _run_config(fleet, reps=50, warmup=1, crashed=None, progress=None):
    return bench.run_config(bench.Config(6, 150, 2, 2, varlen=True), fleet, reps=reps, warmup=warmup, l2_bytes=1,
                            device=torch.device("cpu"), ceilings=CEILINGS, run={"id": "r", "commit": "c", "date": "d"},
                            crashed=crashed, progress=progress)


def _slices(events):
    return [event[1:] for event in events if event[0] == "time"]


@pytest.mark.parametrize("plan", ["scheduler", "whole", "even", "fp8", "fp8-even", "parts", "fp8-parts", "fold"])
def test_the_probe_runs_our_step_through_the_benchmarks_checks(cpu_harness, monkeypatch, plan):
    monkeypatch.setattr(probe_decode, "kernel_timeline", lambda graph: [("narrow", 0.9, 10.0)])
    peer = peers.MlaBackendFp8Peer() if plan.startswith("fp8") else peers.MlaBackendPeer()
    if plan.endswith(("whole", "even")):
        peer = probe_decode.with_plan(peer, plan.rsplit("-", 1)[-1])
    if plan.endswith("parts"):   # --parts: a plan of 5 parts, not num_sm_parts' 132 (the public op refuses it)
        peer = probe_decode.with_parts(peer, 5)
    peer.us = 10.0   # what the fake graphs report
    config = bench.Config(6, 150, 2, 2, varlen=True)
    # --fold-pages: every request reads the first 3 pages; the reference is taken on the folded tables
    fold_pages = 3 if plan == "fold" else None
    line = probe_decode.probe(config, peer, 50, 1, torch.device("cpu"), fold_pages)
    assert line.startswith("b6/s150/h2/q2/varlen") and " ok " in line and "narrow 0.9-10.0" in line
    nbytes = bench.decode_bytes(sum(bench.make_seqlens(config)), 6, 2, 2, kv_bytes=1 if "fp8" in plan else 2)
    assert f"{bench.metrics(10.0, nbytes, 1)['gbps']:6.0f} GB/s" in line   # an fp8 cache counts 1 byte a value




@pytest.mark.parametrize("seqlens, parts, chunks", [
    ([2048] * 64, 132, [2] * 64),            # b64/s2048: two chunks of 16 blocks a request, 128 parts busy
    ([1024] * 32, 132, [4] * 32),            # b32/s1024: four of 4 blocks
    ([4096] * 16, 66, [4] * 16),             # b16/s4096 at 128 heads (66 parts a query tile): four of 16
    ([4096] * 128, 132, [1] * 128),          # b128/s4096: one a request (as the whole-request plan)
    ([16384] * 64, 132, [2] * 64),           # b64/s16384: 125-block chunks would need 192 parts; 128 fit
    ([0, 65, 700, 1], 8, [1, 1, 4, 1]),      # an empty request is one empty chunk; 3-block chunks fit
])
def test_the_even_chunk_plan_cuts_each_request_into_equal_chunks_one_a_part(seqlens, parts, chunks):
    sched, num_splits = probe_decode.even_chunk_plan(seqlens, parts, torch.device("cpu"))
    assert sched.shape == (parts, 8) and sched.dtype == num_splits.dtype == torch.int32
    assert (num_splits[1:] - num_splits[:-1]).tolist() == chunks
    pieces = [p for p in part_pieces(sched, seqlens) if p]
    assert all(len(p) == 1 for p in pieces) and len(pieces) == sum(chunks) <= parts
    assert (sched[len(pieces):, 0] == len(seqlens)).all()   # the rest empty
    walked, earlier = {}, {}
    for ((req, first, last),), entry in zip(pieces, sched.tolist()):
        assert first == walked.get(req, 0) and entry[4] == earlier.get(req, 0)   # begin_split: earlier chunks
        walked[req], earlier[req] = last, earlier.get(req, 0) + 1
    assert [walked[r] for r in range(len(seqlens))] == [-(-s // 64) for s in seqlens]
    lengths = {last - first for (req, first, last), in pieces if last - first and last < -(-seqlens[req] // 64)}
    assert len(lengths) <= 1   # every chunk but a request's last has the same length

def test_the_probe_summary_averages_each_trees_rounds_and_leaves_out_failed_checks(tmp_path):
    def log(tree, round_, lines):
        (tmp_path / f"probe_{tree}_{round_}.log").write_text("NVIDIA H200 2.11.0+cu130\n" + "\n".join(lines) + "\n")

    ok = "b128/s4096/h16/q1 {:8.1f} us   3618 GB/s   216 TFLOPS  rel 3.1e-02/3.1e-02 ok  [narrow 0.0-80.0]"
    log("main", 1, [ok.format(85.0), "b32/s1024/h16/q1 21.8 us 937 GB/s 54 TFLOPS rel 9e-01/9e-01 CHECK FAILED x"])
    log("main", 2, [ok.format(86.0)])
    log("exp", 1, [ok.format(84.0)])
    log("exp", 10, [ok.format(83.0)])   # rounds sort by number, not by name
    table = probe_summary.collect(tmp_path, ["main", "exp"])
    assert table == {"b128/s4096/h16/q1": {"main": [85.0, 86.0], "exp": [84.0, 83.0]}}
    line = probe_summary.render(table, ["main", "exp"])
    assert "main    85.5 (85.0 86.0)" in line and "exp    83.5 (84.0 83.0) 0.977x" in line


def test_the_probe_summary_keeps_diagnostic_trees_whose_outputs_are_wrong_by_design(tmp_path):
    failed = "b128/s4096/h128/q1  {:8.1f} us   2722 GB/s   622 TFLOPS  rel nan/nan CHECK FAILED NaN in out  [wide 0-1]"
    for tree, us in (("main", 248.0), ("main-noload-nocheck", 235.0)):
        line = failed.format(us) if tree.endswith("-nocheck") else failed.format(us).replace("CHECK FAILED", "ok")
        (tmp_path / f"probe_{tree}_1.log").write_text(line + "\n")
    table = probe_summary.collect(tmp_path, ["main", "main-noload-nocheck"])
    assert table == {"b128/s4096/h128/q1": {"main": [248.0], "main-noload-nocheck": [235.0]}}


def test_run_config_checks_every_peer_against_the_reference(cpu_harness):
    unavailable = _FakePeer("gone")
    unavailable.error = "ImportError: nope"
    fleet = {
        "mla_backend": _FakePeer("mla_backend", us=10.0),
        "p_fast": _FakePeer("p_fast", us=8.0, with_lse=False),
        "p_slow": _FakePeer("p_slow", us=20.0),
        "p_zero": _FakePeer("p_zero", us=1.0, scale=0.0),  # writes zeros: must not get a time
        "p_alias": _FakePeer("p_alias", us=5.0, shared_out=True),  # input sets share one output buffer
        "p_too_fast": _FakePeer("p_too_fast", us=1e-4),  # beyond the copy ceiling
        "p_broken": _FakePeer("p_broken", fail="boom"),
        "p_crashed": _FakePeer("p_crashed"),
        "gone": unavailable,
    }
    progress = _Progress()
    record = _run_config(fleet, crashed={"p_crashed": "crashed the benchmark process (exit code 3)"},
                         progress=progress)
    got = record["peers"]
    assert list(got) == [name for name in fleet if name != "gone"]  # peer order, whatever the phase it ended in
    assert "gone" not in got and record["input_sets"] == bench.MIN_INPUT_SETS
    assert record["check_rows_empty"] and set(record["check_rows_empty"]) <= set(record["check_rows"])
    assert got["mla_backend"]["us"] == 10.0 and got["mla_backend"]["check"]["passed"]
    assert got["mla_backend"]["check"]["max_abs_err_lse"] is not None
    assert got["p_fast"]["valid"] and got["p_fast"]["check"]["max_abs_err_lse"] is None
    assert "us" not in got["p_zero"] and got["p_zero"]["error"].startswith("check failed right after capture")
    assert got["p_zero"]["rel_err"] == pytest.approx(1.0)
    assert "us" not in got["p_alias"] and "aliasing" in got["p_alias"]["error"]
    assert got["p_too_fast"]["valid"] is False and "harness bug" in got["p_too_fast"]["invalid_reason"]
    assert got["p_broken"] == {"error": "RuntimeError: boom"}
    assert got["p_crashed"]["crashed"] and "exit code 3" in got["p_crashed"]["error"]
    assert record["best_peer"] == {"name": "p_fast", "us": 8.0}
    assert record["ratio_vs_best_peer"] == 0.8
    assert record["speedup_vs"] == {"p_fast": 0.8, "p_slow": 2.0}
    assert "b6/s150/h2/q2/varlen p_crashed start" not in progress.lines
    assert progress.lines[:2] == ["b6/s150/h2/q2/varlen mla_backend start", "b6/s150/h2/q2/varlen mla_backend end"]


def test_run_config_times_the_peers_interleaved_in_rounds(cpu_harness):
    fleet = {name: _FakePeer(name, us=us) for name, us in (("a", 10.0), ("b", 12.0), ("c", 14.0))}
    progress = _Progress()
    record = _run_config(fleet, reps=55, warmup=7, progress=progress)
    slices = _slices(cpu_harness)
    assert len(slices) == 3 * bench.TIMING_ROUNDS == 30
    rounds = [[peer for peer, *_ in slices[3 * r:3 * r + 3]] for r in range(bench.TIMING_ROUNDS)]
    assert rounds[:4] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert all(sorted(peers_of_round) == ["a", "b", "c"] for peers_of_round in rounds)
    assert {reps for _, _, reps, _ in slices} == {6}  # ceil(55 / 10): 60 >= 55 replays per peer
    for name in fleet:
        assert sum(reps for peer, _, reps, _ in slices if peer == name) == 60
        assert [warmup for peer, _, _, warmup in slices if peer == name] == [7] + [bench.ROUND_WARMUP] * 9
    assert {name: entry["us"] for name, entry in record["peers"].items()} == {"a": 10.0, "b": 12.0, "c": 14.0}
    # one rotation over the input sets across all peers' replays: each slice (its warm-up first) goes on where the
    # one before ended
    sets, cursor = record["input_sets"], 0
    for _, first_set, reps, warmup in slices:
        assert first_set == (cursor + warmup) % sets
        cursor += warmup + reps
    # the supervisor blames a crash on the peer whose piece of work started last: capture, each slice, the checks
    key = "b6/s150/h2/q2/varlen"
    pieces = ["a", "b", "c"] + [peer for peer, *_ in slices] + ["a", "b", "c"]
    assert progress.lines == [f"{key} {peer} {event}" for peer in pieces for event in ("start", "end")]
    assert bench.protocol_info(55)["reps"] == 60 and bench.protocol_info(100)["rounds"] == bench.TIMING_ROUNDS


def test_a_peer_that_fails_its_check_after_capture_is_never_timed(cpu_harness):
    fleet = {"a": _FakePeer("a"), "zero": _FakePeer("zero", scale=0.0), "broken": _FakePeer("broken", fail="boom"),
             "b": _FakePeer("b", us=12.0)}
    record = _run_config(fleet)
    assert {peer for peer, *_ in _slices(cpu_harness)} == {"a", "b"}
    assert record["peers"]["zero"]["error"].startswith("check failed right after capture")
    assert record["peers"]["broken"] == {"error": "RuntimeError: boom"}
    first_time = next(i for i, event in enumerate(cpu_harness) if event[0] == "time")
    released = {event[1] for event in cpu_harness[:first_time] if event[0] == "reset"}
    assert released == {"zero"}  # its graphs given back before the others are timed, theirs kept


def test_a_peer_raising_while_timed_gets_an_error_entry_and_the_others_their_times(cpu_harness, monkeypatch):
    timed = _fake_time_replays(cpu_harness)

    def time_replays(graphs, reps, warmup):
        if graphs[0].peer == "b" and sum(1 for e in cpu_harness if e[:2] == ("time", "b")) == 3:
            raise RuntimeError("launch failed in round 4")
        return timed(graphs, reps, warmup)

    monkeypatch.setattr(bench, "time_replays", time_replays)
    progress = _Progress()
    fleet = {name: _FakePeer(name, us=us) for name, us in (("a", 10.0), ("b", 12.0), ("c", 14.0))}
    record = _run_config(fleet, progress=progress)
    got = record["peers"]
    assert got["b"] == {"error": "RuntimeError: launch failed in round 4"}
    assert got["a"]["us"] == 10.0 and got["c"]["us"] == 14.0
    slices = _slices(cpu_harness)
    assert [peer for peer, *_ in slices].count("b") == 3 and len(slices) == 3 + 2 * bench.TIMING_ROUNDS
    # round 4 is a, b, c: right after a's slice, b's raised and its graphs were released at once
    failed_at = [i for i, event in enumerate(cpu_harness) if event[0] == "time"][9] + 1
    assert cpu_harness[failed_at - 1][:2] == ("time", "a")
    assert cpu_harness[failed_at:failed_at + record["input_sets"]] == [
        ("reset", "b", i) for i in range(record["input_sets"])]
    assert not any(event[:2] == ("reset", "b") for event in cpu_harness[:failed_at])
    assert [peer for peer, *_ in slices[10:12]] == ["c", "c"]  # round 4 goes on with c; round 5 has no b


def test_a_peer_that_kills_the_cuda_context_while_timed_is_left_to_the_supervisor(cpu_harness, monkeypatch,
                                                                                  tmp_path):
    def time_replays(graphs, reps, warmup):
        if graphs[0].peer == "b":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return [graphs[0].us] * reps

    monkeypatch.setattr(bench, "time_replays", time_replays)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(bench, "cuda_context_alive", lambda: False)
    log = tmp_path / "progress.log"
    with pytest.raises(bench.CudaContextLost, match="^b: RuntimeError: CUDA error"):
        _run_config({name: _FakePeer(name) for name in ("a", "b", "c")}, progress=bench_supervisor.ProgressLog(log))
    key = "b6/s150/h2/q2/varlen"
    assert log.read_text().splitlines()[-3:] == [f"config {key} peer a start", f"config {key} peer a end",
                                                 f"config {key} peer b start"]
    assert bench_supervisor.unfinished_pair(log.read_text()) == (key, "b")


def test_a_step_without_keepalive_is_refused():
    class Bare(_FakePeer):
        def _prepare(self, batch):
            return lambda: (batch.q[..., :512], None)

    batch = bench.make_input_set(bench.Config(1, 64, 1, 1), [64], seed=0, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="keepalive"):
        bench.prepare_steps(Bare("bare"), [batch])


# --- best peer, geomean, results files --------------------------------------------------------------------------


def _timed(us, config, rel_err=0.004, ceilings=CEILINGS):
    total = sum(bench.make_seqlens(config))
    return bench.timed_entry([us], bench.decode_bytes(total, config.b, config.s_q, config.h_q),
                             bench.decode_flops(total, config.s_q, config.h_q), ceilings,
                             {"passed": True, "rel_err_out": rel_err, "max_abs_err_lse": 1e-5, "problems": []})


def test_best_peer_is_the_fastest_counted_peer():
    config = bench.Config.parse("b128/s4096/h16/q1")
    entries = {"mla_backend": _timed(200.0, config), "flashmla": _timed(256.6, config),
               "fa3_mla": _timed(11.5, config),  # above the copy ceiling: does not count
               "fa3_mla_default": _timed(230.0, config),
               "triton_mla": {"error": "check failed right after capture: NaN in out",
                              "check": {"passed": False}}}
    assert bench_report.best_peer(entries) == ("fa3_mla_default", 230.0)
    assert bench_report.ratio_vs_best_peer(entries) == pytest.approx(1.15)
    assert bench_report.best_peer({"mla_backend": entries["mla_backend"]}) is None
    assert bench_report.ratio_vs_best_peer({"flashmla": entries["flashmla"]}) is None
    assert bench_report.geomean([2.0, 0.5]) == pytest.approx(1.0)
    assert bench_report.geomean([1.2, 1.2, None]) == pytest.approx(1.2) and bench_report.geomean([]) is None


def _doc(results, commit="abc", run_id="run1"):
    return {
        "schema": bench_report.SCHEMA, "run_id": run_id,
        "env": {"card": "h200", "device_name": "NVIDIA H200", "sm_count": 132, "l2_bytes": 52428800,
                "driver": "580.1", "torch": "2.11.0+cu130", "cuda": "13.0", "triton": "3.6.0",
                "python": "3.12.3", "commit": commit, "date": "2026-11-25T00:00:00+00:00"},
        "ceilings": CEILINGS, "protocol": bench.protocol_info(100),
        "peer_order": ["mla_backend", "flashmla", "fa3_mla", "triton_mla", "flashinfer_mla"],
        "peers": {"mla_backend": {"label": "ours", "available": True, "error": None},
                  "flashmla": {"label": "FlashMLA", "available": True, "error": None},
                  "fa3_mla": {"label": "FA3-MLA", "available": True, "error": None},
                  "triton_mla": {"label": "Triton", "available": False, "error": "ImportError: no triton"},
                  "flashinfer_mla": {"label": "FlashInfer", "available": True, "error": None}},
        "results": results,
    }


def _record(key, ours_us, flashmla_us, extra=None, run_id="run1"):
    config = bench.Config.parse(key)
    seqlens = bench.make_seqlens(config)
    entries = {"mla_backend": _timed(ours_us, config), "flashmla": _timed(flashmla_us, config), **(extra or {})}
    return bench.result_record(config, seqlens, 4, bench.reference_rows(seqlens), entries,
                               {"id": run_id, "commit": "abc", "date": "d", "ceilings": CEILINGS})


def test_write_results_json_and_markdown(tmp_path):
    config = bench.Config.parse("b128/s4096/h16/q1")
    extra = {"fa3_mla": _timed(11.5, config),
             "flashinfer_mla": {"error": "crashed the benchmark process (exit code 3)", "crashed": True}}
    doc = _doc([_record("b128/s4096/h16/q1", 200.0, 256.6, extra), _record("b1/s32768/h16/q1", 40.0, 34.0)])
    json_path, md_path = bench_report.write_results(doc, tmp_path, "h200")
    assert (json_path.name, md_path.name) == ("h200.json", "h200.md")
    loaded = json.loads(json_path.read_text())
    assert loaded["env"]["torch"] == "2.11.0+cu130" and loaded["ceilings"]["copy_gbps"] == 4000.0
    first = loaded["results"][0]
    assert first["speedup_vs"] == {"flashmla": pytest.approx(1.283)}
    assert first["best_peer"]["name"] == "flashmla" and first["ratio_vs_best_peer"] == pytest.approx(1.283)
    assert first["bytes"] == bench.decode_bytes(128 * 4096, 128, 1, 16)
    assert loaded["summary"]["geomean_ratio_vs_best_peer"] == pytest.approx(math.sqrt(1.283 * 0.85), abs=1e-3)
    md = md_path.read_text()
    assert "| b128/s4096/h16/q1 | 524288 | 200.0 | `flashmla` | 256.6 | 1.28x | 3042 | 91 | 76% |" in md
    assert "| b1/s32768/h16/q1 | 32768 | 40.0 | `flashmla` | 34.0 | 0.85x |" in md
    assert "Geomean of the ratio over 2 configs: **1.04x**" in md
    assert "200.0 (3042, 91, 76%)" in md and "invalid (11.5)" in md and "| crashed |" in md
    assert "`triton_mla`: Triton: unavailable: ImportError: no triton" in md
    assert "4.0e-03, lse 1.0e-05" in md
    assert "b128/s4096/h16/q1 `fa3_mla`: above the measured ceiling: harness bug" in md
    assert "b128/s4096/h16/q1 `flashinfer_mla`: crashed the benchmark process (exit code 3)" in md
    assert "copy 4000 GB/s" in md and "matmul 700 TFLOPS" in md
    assert "driver 580.1" in md and "commit abc" in md
    assert ("median of 100 replays per implementation timed by CUDA events, in 10 rounds interleaved across the "
            "implementations (each round's first implementation rotates)") in md


def test_markdown_of_results_timed_before_the_rounds_says_how_they_were_timed():
    doc = _doc([_record("b8/s8192/h16/q1", 50, 77)])
    del doc["protocol"]["rounds"]
    md = bench_report.render_markdown(bench_report.finish_doc(doc))
    assert "median of 100 replays timed by CUDA events; 4+ input sets" in md and "interleaved" not in md


def test_markdown_marks_failed_checks():
    failed = {"error": "check failed right after capture: out relative error 1.00e+00 > 0.02", "rel_err": 1.0,
              "check": {"passed": False, "rel_err_out": 1.0, "max_abs_err_lse": None, "problems": ["x"]}}
    doc = bench_report.finish_doc(_doc([_record("b8/s8192/h16/q1", 50, 77, {"fa3_mla": failed})]))
    md = bench_report.render_markdown(doc)
    assert "FAIL 1.0e+00" in md and "| check failed |" in md
    assert "b8/s8192/h16/q1 `fa3_mla`: check failed right after capture" in md


def test_write_results_merge_keeps_other_configs_and_peers(tmp_path):
    bench_report.write_results(_doc([_record("b128/s4096/h16/q1", 200.0, 256.6),
                                     _record("b8/s8192/h16/q1", 50, 77)]), tmp_path, "h200")
    only_fa3 = _record("b8/s8192/h16/q1", 45, 77)
    only_fa3["peers"] = {"fa3_mla": _timed(40.0, bench.Config.parse("b8/s8192/h16/q1"))}
    bench_report.write_results(_doc([only_fa3], commit="def", run_id="run2"), tmp_path, "h200", merge=True)
    loaded = json.loads((tmp_path / "h200.json").read_text())
    assert [r["key"] for r in loaded["results"]] == ["b128/s4096/h16/q1", "b8/s8192/h16/q1"]
    merged = loaded["results"][1]
    assert set(merged["peers"]) == {"mla_backend", "flashmla", "fa3_mla"} and loaded["env"]["commit"] == "def"
    assert all("check" in e for e in merged["peers"].values())
    assert merged["best_peer"]["name"] == "fa3_mla" and merged["ratio_vs_best_peer"] == pytest.approx(0.8)
    bench_report.write_results(_doc([_record("b8/s8192/h16/q1", 45, 77)]), tmp_path, "h200")
    assert len(json.loads((tmp_path / "h200.json").read_text())["results"]) == 1


def test_cli_table_and_plot_count_only_valid_times(tmp_path):
    from mla_backend.cli import bench as cli_bench

    config = bench.Config.parse("b128/s4096/h16/q1")
    extra = {"fa3_mla": _timed(11.5, config), "fa3_mla_default": _timed(230.0, config),
             "flashinfer_mla": {"error": "crashed the benchmark process (exit code 3)", "crashed": True}}
    doc = _doc([_record("b128/s4096/h16/q1", 200.0, 256.6, extra)])
    doc["peers"]["fa3_mla_default"] = {"label": "FA3-MLA (own heuristics)", "available": True, "error": None}
    doc = bench_report.finish_doc(doc)
    table = cli_bench.format_table(doc)
    header = next(line for line in table.splitlines() if line.startswith("config "))
    assert "fa3_mla " in header and "fa3_mla_default" in header  # two FA3-MLA modes, two names
    row = next(line for line in table.splitlines() if line.startswith("b128/s4096/h16/q1 "))
    assert "invalid" in row and "crashed" in row and "11.5" not in row
    assert "geomean over configs: 1.15x" in table
    pytest.importorskip("matplotlib")
    assert cli_bench.plot(doc, tmp_path / "p.png").stat().st_size > 10_000


def test_merge_drops_times_that_carry_no_check():
    old = _doc([_record("b8/s8192/h16/q1", 50, 77)])
    old["results"][0]["peers"]["fa3_mla"] = {"us": 42.7, "gbps": 1776.0, "tflops": 54.0}  # schema 1: no check
    old["results"][0]["peers"]["triton_mla"] = {"error": "PeerUnavailable: s_q > 1"}
    new = _doc([], run_id="run2")
    merged = bench_report.merge_results(old, new)
    peers_left = merged["results"][0]["peers"]
    assert "fa3_mla" not in peers_left and "triton_mla" in peers_left and "flashmla" in peers_left


def test_render_refuses_results_without_checks(tmp_path, capsys):
    (tmp_path / "h100.json").write_text(json.dumps({"schema": 1, "results": []}))
    assert bench.main(["--render", "--card", "h100", "--out-dir", str(tmp_path)]) == 2
    assert "schema 1" in capsys.readouterr().err
    bench_report.write_results(_doc([_record("b8/s8192/h16/q1", 50, 77)]), tmp_path, "h200")
    (tmp_path / "h200.md").unlink()
    assert bench.main(["--render", "--card", "h200", "--out-dir", str(tmp_path)]) == 0
    assert "b8/s8192/h16/q1" in (tmp_path / "h200.md").read_text()


def test_resume_and_upsert():
    doc = _doc([_record("b8/s8192/h16/q1", 50, 77)])
    again = _record("b8/s8192/h16/q1", 45, 77)
    bench.upsert(doc, again)
    bench.upsert(doc, _record("b4/s4096/h16/q1", 30, 40))
    assert [r["key"] for r in doc["results"]] == ["b8/s8192/h16/q1", "b4/s4096/h16/q1"]
    assert doc["results"][0] is again


def test_resumed_doc_only_continues_the_same_run(tmp_path):
    bench_report.write_results(_doc([_record("b8/s8192/h16/q1", 50, 77)], run_id="run1"), tmp_path, "h200")
    assert bench.resumed_doc(tmp_path / "h200.json", "run1")["results"][0]["key"] == "b8/s8192/h16/q1"
    assert bench.resumed_doc(tmp_path / "h200.json", "other") is None
    assert bench.resumed_doc(tmp_path / "missing.json", "run1") is None


def test_worker_resumes_its_run_and_records_the_crashed_pair(tmp_path, monkeypatch):
    env = _doc([])["env"]
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(bench, "environment", lambda commit, card: dict(env))
    monkeypatch.setattr(bench_ceilings, "measure_ceilings", lambda device: CEILINGS)
    monkeypatch.setattr(bench, "load_peers",
                        lambda path, names, kv="bf16": {n: _FakePeer(n) for n in ("flashmla", "mla_backend")})
    calls = []

    def fake_run_config(config, peers, reps, warmup, l2_bytes, device, ceilings, run, crashed, progress):
        calls.append((config.key, crashed, list(peers)))
        entries = {n: {"error": crashed[n], "crashed": True} if n in (crashed or {}) else _timed(10.0, config)
                   for n in peers}
        return bench.result_record(config, bench.make_seqlens(config), 4, [0], entries, run)

    monkeypatch.setattr(bench, "run_config", fake_run_config)
    crash = "crashed the benchmark process (exit code 3); stderr tail: illegal memory access"
    state = bench_supervisor.WorkerState("run9", str(tmp_path / "progress.log"),
                                         [{"config": "b4/s64/h1/q1", "peer": "flashmla", "error": crash}])
    state.save(tmp_path / "state.json")
    # the child that crashed had written its first config
    bench_report.write_results(_doc([_record("b8/s64/h1/q1", 9.0, 12.0, run_id="run9")], run_id="run9"),
                               tmp_path, "h200")
    args = bench.parse_args(["--configs", "b8/s64/h1/q1,b4/s64/h1/q1", "--out-dir", str(tmp_path),
                             "--worker-state", str(tmp_path / "state.json")])
    assert bench.run_benchmark(args, bench.selected_configs(args)) == 0
    assert calls == [("b4/s64/h1/q1", {"flashmla": crash}, ["mla_backend", "flashmla"])]
    loaded = json.loads((tmp_path / "h200.json").read_text())
    assert [r["key"] for r in loaded["results"]] == ["b8/s64/h1/q1", "b4/s64/h1/q1"]
    assert loaded["results"][0]["peers"]["mla_backend"]["us"] == 9.0  # kept, not measured again
    assert loaded["results"][1]["peers"]["flashmla"] == {"error": crash, "crashed": True}
    assert loaded["run_id"] == "run9" and "crashed the benchmark process" in (tmp_path / "h200.md").read_text()


# --- the supervisor ---------------------------------------------------------------------------------------------


def test_unfinished_pair_is_the_last_start_without_an_end():
    text = ("config A peer ours start\nconfig A peer ours end\nconfig A peer fa3_mla start\n"
            "config A peer fa3_mla end\nconfig B peer ours start\n")
    assert bench_supervisor.unfinished_pair(text) == ("B", "ours")
    assert bench_supervisor.unfinished_pair(text + "config B peer ours end\n") is None
    assert bench_supervisor.unfinished_pair("") is None
    assert bench_supervisor.unfinished_pair("noise\nconfig b1/s64/h1/q1/varlen peer x start\n") == (
        "b1/s64/h1/q1/varlen", "x")


def test_progress_log_and_worker_state_round_trip(tmp_path):
    log = bench_supervisor.ProgressLog(tmp_path / "progress.log")
    log.start("b1/s64/h1/q1", "fa3_mla")
    assert bench_supervisor.unfinished_pair((tmp_path / "progress.log").read_text()) == ("b1/s64/h1/q1", "fa3_mla")
    log.end("b1/s64/h1/q1", "fa3_mla")
    assert bench_supervisor.unfinished_pair((tmp_path / "progress.log").read_text()) is None
    state = bench_supervisor.WorkerState("id", str(tmp_path / "progress.log"),
                                         [{"config": "K", "peer": "p", "error": "e"}])
    state.save(tmp_path / "s.json")
    loaded = bench_supervisor.WorkerState.load(tmp_path / "s.json")
    assert loaded == state and loaded.crashed_pairs() == {"K": {"p": "e"}}


FAKE_CHILD = textwrap.dedent('''
    """Stands in for bench_decode.py under the supervisor: peer `bad` kills the process on config B."""
    import json, sys
    from pathlib import Path

    out = Path(sys.argv[1])
    mode = sys.argv[2]
    state = json.loads(Path(sys.argv[sys.argv.index("--worker-state") + 1]).read_text())
    crashed = {(c["config"], c["peer"]) for c in state["crashed"]}
    progress = Path(state["progress"])
    with (out / "launches.txt").open("a") as f:
        f.write(json.dumps(sorted(crashed)) + "\\n")
    if mode == "dies-outside":
        sys.exit(7)
    done = []
    for config in ("A", "B", "C"):
        for peer in ("ours", "bad"):
            if (config, peer) in crashed:
                done.append(f"{config}/{peer}: crashed")
                continue
            with progress.open("a") as f:
                f.write(f"config {config} peer {peer} start\\n")
            if mode == "crashes" and (config, peer) == ("B", "bad"):
                print("CUDA error: an illegal memory access was encountered", file=sys.stderr)
                sys.exit(3)
            with progress.open("a") as f:
                f.write(f"config {config} peer {peer} end\\n")
            done.append(f"{config}/{peer}: ok")
    (out / "results.json").write_text(json.dumps(done))
''')


def _supervise_fake(tmp_path, mode):
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)
    rc = bench_supervisor.supervise([sys.executable, str(script), str(tmp_path), mode], tmp_path)
    launches = (tmp_path / "launches.txt").read_text().splitlines()
    state = json.loads((tmp_path / bench_supervisor.STATE_NAME).read_text())
    return rc, launches, state


def test_supervisor_records_the_crash_and_relaunches_without_that_pair(tmp_path, capsys):
    rc, launches, state = _supervise_fake(tmp_path, "crashes")
    assert rc == 0 and len(launches) == 2
    assert json.loads(launches[1]) == [["B", "bad"]]
    (crash,) = state["crashed"]
    assert (crash["config"], crash["peer"]) == ("B", "bad")
    assert "exit code 3" in crash["error"] and "illegal memory access" in crash["error"]
    assert json.loads((tmp_path / "results.json").read_text()) == [
        "A/ours: ok", "A/bad: ok", "B/ours: ok", "B/bad: crashed", "C/ours: ok", "C/bad: ok"]
    assert "relaunching" in capsys.readouterr().err


def test_supervisor_launches_once_when_nothing_crashes(tmp_path):
    rc, launches, state = _supervise_fake(tmp_path, "clean")
    assert rc == 0 and len(launches) == 1 and state["crashed"] == []


def test_supervisor_does_not_relaunch_a_death_outside_any_peer(tmp_path, capsys):
    rc, launches, state = _supervise_fake(tmp_path, "dies-outside")
    assert rc == 7 and len(launches) == 1 and state["crashed"] == []
    assert "not relaunching" in capsys.readouterr().err


def test_crash_error_names_the_signal():
    assert "SIGSEGV" in bench_supervisor.crash_error(-11, ["Segmentation fault\n"])
    assert bench_supervisor.crash_error(3, ["x\n"]).endswith("x")


# --- peers: call construction that needs no GPU --------------------------------------------------------------


def test_fa3_persistent_scheduler_buffer_is_vllms_size():
    assert [peers.fa3_scheduler_buffer_size(b) for b in (1, 4, 5, 128, 132)] == [17, 17, 33, 513, 529]


def test_flashinfer_page_lists_cover_exactly_each_requests_pages():
    block_table = torch.tensor([[5, 6, 9], [0, 0, 0], [7, 0, 0], [1, 2, 3]], dtype=torch.int32)
    seqlens = torch.tensor([129, 0, 64, 65], dtype=torch.int32)
    kv_indptr, kv_indices = peers.flashinfer_page_lists(block_table, seqlens, 64)
    assert kv_indptr.tolist() == [0, 3, 3, 4, 6]
    assert kv_indices.tolist() == [5, 6, 9, 7, 1, 2]
    assert kv_indptr.dtype == kv_indices.dtype == torch.int32 and kv_indices.is_contiguous()


def test_keepalive_holds_the_batch_and_extras():
    batch = bench.make_input_set(bench.Config(2, 64, 1, 1), [64, 10], seed=0, device=torch.device("cpu"))
    extra = torch.zeros(3)
    step = peers.with_keepalive(lambda: None, batch, extra)
    assert step.keepalive[:4] == batch.tensors() and step.keepalive[4] is extra


# --- peers: vLLM heuristics, bundle, shim ---------------------------------------------------------------


def test_triton_split_count_follows_vllm():
    assert [peers.triton_num_kv_splits(n, 132) for n in (1, 511, 1024, 4096, 5000, 32768)] == [1, 1, 2, 8, 16, 64]
    assert peers.triton_num_kv_splits(32768, 4) == 8


def _peer_bundle(tmp_path, files):
    """What peers_bundle.main writes, from `files` instead of downloaded wheels: an mla_backend bundle folder."""
    peers_bundle.write_files({**files, bundle.MANIFEST: peers_bundle.manifest({}, files)}, tmp_path / "tree")
    return bundle.write_bundle(tmp_path / "tree", tmp_path / "parts", 1000)


def test_peer_bundle_round_trip_and_corruption(tmp_path):
    files = {"vllm/a.py": b"A = 1\n", "vllm/sub/lib.so": random.Random(0).randbytes(5000)}
    parts = _peer_bundle(tmp_path, files)
    parts_dir = tmp_path / "parts"
    assert len(parts) > 1 and all(p.stat().st_size <= 1000 for p in parts)
    assert {p.name for p in parts_dir.iterdir()} == {p.name for p in parts} | {"SHA256SUMS", "mla_backend_bundle.py"}
    root = peers.unpack_bundle(parts_dir, tmp_path / "cache")
    assert (root / "vllm" / "a.py").read_bytes() == files["vllm/a.py"]
    assert (root / "vllm" / "sub" / "lib.so").read_bytes() == files["vllm/sub/lib.so"]
    assert peers.resolve_bundle(root) == root and peers.unpack_bundle(parts_dir, tmp_path / "cache") == root
    # Same bytes twice give the same parts (the sums printed for them are reproducible).
    first = (parts_dir / "SHA256SUMS").read_text()
    _peer_bundle(tmp_path, files)
    assert (parts_dir / "SHA256SUMS").read_text() == first
    parts[-1].write_bytes(parts[-1].read_bytes()[:-1])
    with pytest.raises(bundle.BundleError, match="sha256"):
        peers.unpack_bundle(parts_dir, tmp_path / "cache2")


def test_peer_bundle_unpacks_without_being_read_into_memory(tmp_path, monkeypatch):
    _peer_bundle(tmp_path, {"vllm/a.py": b"A = 1\n"})
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    assert (peers.unpack_bundle(tmp_path / "parts", tmp_path / "cache") / "vllm" / "a.py").is_file()


def test_the_bundles_own_unpacker_extracts_peers_without_an_activate_script(tmp_path):
    _peer_bundle(tmp_path, {"vllm/a.py": b"A = 1\n"})
    assert bundle.unpack(tmp_path / "parts", tmp_path / "site") is None
    assert (tmp_path / "site" / "vllm" / "a.py").is_file() and not (tmp_path / "site" / "activate.sh").exists()
    assert peers.resolve_bundle(tmp_path / "site") == tmp_path / "site"


def test_a_peer_bundle_of_the_old_format_is_refused_with_the_rebuild_command(tmp_path):
    (tmp_path / "peers.tar.xz.part-00").write_bytes(b"xz")
    (tmp_path / "peers.sha256").write_text("0" * 64 + "  peers.tar.xz\n")
    with pytest.raises(bundle.BundleError, match=r"old format.*python benchmarks/peers_bundle.py --out"):
        peers.resolve_bundle(tmp_path)


def test_bundle_file_list_covers_what_the_peers_import():
    shipped = set(peers_bundle.WHEEL_FILES)
    for module in ("vllm._flashmla_C", "vllm._flashmla_extension_C", "vllm.v1.attention.ops.flashmla",
                   "vllm.third_party.flashmla.flash_mla_interface", "vllm.vllm_flash_attn.flash_attn_interface",
                   "vllm.v1.attention.ops.triton_decode_attention"):
        path = module.replace(".", "/")
        assert f"{path}.py" in shipped or f"{path}.abi3.so" in shipped, module
    assert "vllm/vllm_flash_attn/_vllm_fa3_C.abi3.so" in shipped
    assert not any("fa2" in name or name == "vllm/__init__.py" for name in shipped)


def test_site_files_keep_the_wheel_layout(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "X = 1\n")
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
        zf.writestr("demo-1.0.data/platlib/demo_ext.so", b"ELF")
        zf.writestr("demo-1.0.data/scripts/demo", "#!/bin/sh\n")
    files = peers_bundle.collect_site_files([wheel])
    assert files == {"site/demo/__init__.py": b"X = 1\n", "site/demo-1.0.dist-info/METADATA": b"Name: demo\n",
                     "site/demo_ext.so": b"ELF"}


def test_bundle_site_goes_last_on_sys_path(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "site").mkdir()
    peers.add_bundle_site(tmp_path)
    peers.add_bundle_site(tmp_path)
    assert sys.path[-1] == str(tmp_path / "site") and sys.path.count(str(tmp_path / "site")) == 1


@pytest.fixture
def clean_vllm_modules():
    saved = {k: v for k, v in sys.modules.items() if k == "vllm" or k.startswith("vllm.")}
    for k in saved:
        del sys.modules[k]
    yield
    for k in [k for k in sys.modules if k == "vllm" or k.startswith("vllm.")]:
        del sys.modules[k]
    sys.modules.update(saved)


def test_shim_imports_bundle_files_without_vllm(tmp_path, clean_vllm_modules):
    pkg = tmp_path / "vllm" / "v1" / "attention" / "ops"
    pkg.mkdir(parents=True)
    for d in (tmp_path / "vllm" / "v1", tmp_path / "vllm" / "v1" / "attention", pkg):
        (d / "__init__.py").write_text("")
    (pkg / "probe.py").write_text(
        "from vllm.logger import init_logger\n"
        "from vllm.platforms import current_platform\n"
        "import vllm.triton_utils\n"
        "logger = init_logger(__name__)\n"
        "ROCM = current_platform.is_rocm()\n"
        "HOPPER = current_platform.is_device_capability_family(90)\n")
    peers.install_vllm_shim(tmp_path)
    peers.install_vllm_shim(tmp_path)  # idempotent
    import vllm.v1.attention.ops.probe as probe

    assert probe.ROCM is False and probe.__file__ == str(pkg / "probe.py")
    assert probe.HOPPER == current_gpu_is_hopper()
    with pytest.raises(RuntimeError, match="already imported"):
        peers.install_vllm_shim(tmp_path / "elsewhere")


def test_load_peers_reports_instead_of_raising(tmp_path, clean_vllm_modules):
    loaded = peers.load_peers(tmp_path / "missing", names=("flashmla", "fa3_mla", "triton_mla", "flashinfer_mla"))
    assert list(loaded) == ["flashmla", "fa3_mla", "triton_mla", "flashinfer_mla"]
    for name in ("flashmla", "fa3_mla", "triton_mla"):
        assert not loaded[name].available and "peer bundle" in loaded[name].error
        with pytest.raises(peers.PeerUnavailable):
            loaded[name].prepare(None)
    assert "no peer bundle" in peers.load_peers(None, names=("triton_mla",))["triton_mla"].error


def test_triton_peer_declines_multi_token_steps():
    peer = peers.Peer.__new__(peers.TritonMLAPeer)
    peers.Peer.__init__(peer)
    batch = bench.make_input_set(bench.Config(1, 64, 1, 2), [64], seed=0, device=torch.device("cpu"))
    assert "s_q > 1" in peer.unsupported_reason(batch)
    with pytest.raises(peers.PeerUnavailable, match="s_q > 1"):
        peer.prepare(batch)


def test_every_wide_diagnostic_edit_matches_the_kernel_once():
    """The diagnostic copies edit the 64-row kernels by snippet; a kernel change that moves a snippet must fail here,
    not on the GPU box."""
    root = Path(__file__).resolve().parent.parent
    for name, edits in wide_diagnostics.COPIES.items():
        files = wide_diagnostics.edited(root, name)
        assert all(files[file] != (root / file).read_text() for file in files) and len(files) == len(
            {file for file, _, _ in edits})


def test_power_probe_reads_nvidia_smi_lines_and_skips_the_rest():
    sample = power_probe.parse_smi_line("2026/11/30 10:53:59.768, 1665, 209.81, 0x0000000000000004\n")
    assert (sample.sm_mhz, sample.watts, sample.power_capped) == (1665, 209.81, True)
    assert not power_probe.parse_smi_line("2026/11/30 10:54:00.260, 1980, 209.48, 0x0000000000000000").power_capped
    for line in ("", "timestamp, clocks.current.sm [MHz], power.draw [W], clocks_event_reasons.active",
                 "2026/11/30 10:54:00.260, [N/A], 209.48, 0x0"):
        assert power_probe.parse_smi_line(line) is None


def test_power_probe_summarizes_only_the_settled_part_of_a_window():
    settle = power_probe.SETTLE_S
    samples = [power_probe.Sample(100.0, 1665, 600.0, True),            # settling: left out
               power_probe.Sample(100.0 + settle, 1980, 500.0, False),
               power_probe.Sample(100.0 + settle + 1, 1800, 700.0, True),
               power_probe.Sample(100.0 + settle + 2, 1980, 520.0, False),
               power_probe.Sample(200.0, 345, 80.0, False)]             # after the window
    window = power_probe.summarize_window(samples, 100.0, 100.0 + settle + 2)
    assert window == {"samples": 3, "sm_mhz": 1980, "watts": 520.0, "power_capped": 1 / 3}
    assert power_probe.summarize_window(samples, 300.0, 301.0) == {"samples": 0}


# --- the fp8 KV cache grid (issue 12) ----------------------------------------------------------------------------


def test_fp8_grid_is_the_memory_bound_and_small_batch_configs_that_fit():
    expected = ["b128/s4096/h16/q1", "b128/s4096/h32/q1", "b64/s16384/h16/q1", "b64/s2048/h16/q2",
                "b32/s1024/h16/q1", "b8/s8192/h16/q1", "b4/s4096/h16/q1", "b1/s32768/h16/q1"]
    for argv in (["--fp8-grid"], ["--kv", "fp8"]):
        args = bench.parse_args(argv)
        configs = bench.selected_configs(args)
        assert args.kv == "fp8" and [c.key for c in configs] == expected
        assert all(c.kv == "fp8" and not c.varlen for c in configs)
    # each one a fixed-length config of the bf16 grids, h16 (or h32 at b128) and s_q * h_q <= 32
    bf16 = set(bench.ISSUE_GRID) | set(bench.QUICK)
    assert set(expected) <= bf16 and all(c.s_q * c.h_q <= 32 for c in bench.fp8_grid_configs())
    assert bench.FP8_TARGETS["mla_backend_bf16"] == {"b128/s4096/h16/q1": 1.8, "b64/s16384/h16/q1": 1.8}
    assert bench.FP8_TARGETS["flashmla_fp8"] == {key: 1.2 for key in expected}
    assert bench.selected_configs(bench.parse_args(["--issue-grid"]))[0].kv == "bf16"  # bf16 stays the default


def test_fp8_grid_lists_on_cpu_and_refuses_bad_combinations(capsys):
    assert bench.main(["--fp8-grid", "--list"]) == 0
    assert capsys.readouterr().out.split() == list(bench.FP8_GRID)
    args = bench.parse_args(["--kv", "fp8", "--configs", "b2/s64/h16/q2,b1/s64/h32/q1", "--varlen"])
    assert [c.key for c in bench.selected_configs(args)] == ["b2/s64/h16/q2", "b2/s64/h16/q2/varlen",
                                                              "b1/s64/h32/q1", "b1/s64/h32/q1/varlen"]
    # more than 32 query rows run the 64-row kernel (MTP's 3 tokens x 16 heads, 128 heads)
    rows = bench.parse_args(["--kv", "fp8", "--configs", "b128/s4096/h16/q3,b1/s64/h128/q1"])
    assert [c.s_q * c.h_q for c in bench.selected_configs(rows)] == [48, 128]
    for argv, message in ((["--fp8-grid", "--kv", "bf16"], "drop --kv bf16"),
                          (["--fp8-grid", "--only", "flashmla"], "not an implementation of the fp8 cache"),
                          (["--quick", "--only", "flashmla_fp8"], "not an implementation of the bf16 cache"),
                          (["--fp8-grid", "--quick"], "not allowed with")):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert message in capsys.readouterr().err
    assert bench.parse_args(["--fp8-grid", "--only", "mla_backend", "flashmla_fp8"]).only == ["mla_backend",
                                                                                              "flashmla_fp8"]
    assert bench.results_stem("h200", "fp8") == "h200_fp8" and bench.results_stem("h200") == "h200"


def test_fp8_bytes_count_the_cache_at_one_byte_a_value():
    sum_seqlen = 128 * 4096
    bf16 = bench.decode_bytes(sum_seqlen, 128, 1, 16)
    fp8 = bench.decode_bytes(sum_seqlen, 128, 1, 16, kv_bytes=1)
    qo = 128 * 1 * 16 * (576 + 512) * 2  # q read and out written, bf16 either way
    assert fp8 == sum_seqlen * 576 + qo and bf16 == sum_seqlen * 576 * 2 + qo
    assert bench.kv_bytes_per_value("fp8") == 1 and bench.kv_bytes_per_value("bf16") == 2
    assert bench.kv_cache_bytes([1, 64, 65], kv_bytes=1) == (1 + 1 + 2) * 64 * 576
    # 80 µs at b128/s4096/h16 (v19's prediction): 3.8 TB/s of fp8 bytes, half what the bf16 count would say
    assert bench.metrics(80.0, fp8, bench.decode_flops(sum_seqlen, 1, 16))["gbps"] == pytest.approx(3830.6, abs=0.1)
    # the bytes floor halves: a time valid for the fp8 cache would be above the copy ceiling counted as bf16
    fp8_floor = bench_ceilings.floor_us(fp8, 0, CEILINGS)
    assert fp8_floor == pytest.approx(fp8 / 4000e3) and fp8_floor < 0.51 * bench_ceilings.floor_us(bf16, 0, CEILINGS)
    assert bench_ceilings.ceiling_violation(fp8, 0, fp8_floor / 1.02, CEILINGS) is None
    assert "harness bug" in bench_ceilings.ceiling_violation(fp8, 0, fp8_floor / 1.04, CEILINGS)
    assert bench_ceilings.ceiling_violation(bf16, 0, 1.5 * fp8_floor, CEILINGS) is not None
    # input sets rotate past L2 on the fp8 cache that the fp8 step reads: b32/s1024 holds 18 MiB of it
    l2 = 50 * 1000 * 1000
    fp8_set = bench.kv_cache_bytes([1024] * 32, kv_bytes=1)
    assert fp8_set == 18 * 2**20 and bench.num_input_sets(fp8_set, l2) == 11
    record = bench.result_record(bench.Config(32, 1024, 16, 1, kv="fp8"), [1024] * 32, 11, [0], {}, {"id": "r"})
    assert record["kv"] == "fp8" and record["bytes"] == bench.decode_bytes(32 * 1024, 32, 1, 16, kv_bytes=1)
    assert record["targets"] == {"flashmla_fp8": 1.2}


def test_fp8_input_set_holds_the_fp8_cache_its_scale_and_the_same_values_in_bf16():
    config = bench.Config(4, 100, 16, 1, varlen=True, kv="fp8")
    seqlens = [100, 1, 0, 130]
    batch = bench.make_input_set(config, seqlens, seed=7, device=torch.device("cpu"))
    assert batch.k_cache_fp8.dtype == torch.float8_e4m3fn and batch.k_cache_fp8.shape == (6, 64, 576)
    assert batch.descale_k.dtype == torch.float32 and batch.descale_k.shape == (1,)
    dequantized = batch.k_cache_fp8.float() * batch.descale_k
    assert float(batch.descale_k) == pytest.approx(float(dequantized.abs().max()) / 448, rel=1e-6)  # amax / 448
    assert batch.k_cache.dtype == torch.bfloat16 and batch.q.dtype == torch.bfloat16
    assert torch.allclose(batch.k_cache.float(), dequantized, rtol=2**-8, atol=0)  # rounded to bf16, nothing more
    assert 0.9 < float(dequantized.std()) < 1.1 and not batch.k_cache_fp8.float().isnan().any()
    assert batch.tensors()[-2:] == (batch.k_cache_fp8, batch.descale_k)
    same_bf16 = bench.make_input_set(bench.Config(4, 100, 16, 1, varlen=True), seqlens, 7, torch.device("cpu"))
    assert torch.equal(same_bf16.q, batch.q) and torch.equal(same_bf16.block_table, batch.block_table)
    # the reference is on the dequantized cache in fp32, not on its bf16 rounding
    rows = bench.reference_rows(seqlens)
    reference = bench.compute_reference(batch, rows)
    index = torch.tensor(rows)
    want, _ = mla_decode_reference(batch.q[index], dequantized, batch.block_table[index], batch.cache_seqlens[index],
                                   512, batch.softmax_scale, True)
    assert torch.equal(reference.out, want)


def test_vllm_style_q_quantization_is_per_tensor_e4m3():
    q = torch.randn(3, 1, 16, 576, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    q8, descale_q = peers.quantize_q_fp8(q)
    assert q8.dtype == torch.float8_e4m3fn and q8.shape == q.shape
    assert descale_q.shape == (1,) and float(descale_q) == pytest.approx(float(q.float().abs().max()) / 448)
    back = q8.float() * descale_q
    big = q.float().abs() > 2**-6 * float(descale_q) * 64  # normal e4m3 range: 3 mantissa bits
    assert ((back - q.float()).abs()[big] <= q.float().abs()[big] * 2**-4 + 1e-6).all()


class _FakeFlashMLAFp8(_FakePeer):
    """Stands in for FlashMLA's fp8 path on the CPU: q quantized per tensor to e4m3, the fp8 cache dequantized."""

    name, label, kv_bytes = "flashmla_fp8", "FlashMLA fp8", 1
    out_rel_tol, lse_abs_tol = peers.FP8_Q_OUT_REL_TOL, peers.FP8_Q_LSE_ABS_TOL

    def __init__(self, us):
        super().__init__("flashmla_fp8", us=us)

    def _prepare(self, batch):
        q8, descale_q = peers.quantize_q_fp8(batch.q)
        out, lse = mla_decode_reference(q8.float() * descale_q, batch.k_cache_fp8.float() * batch.descale_k,
                                        batch.block_table, batch.cache_seqlens, 512, batch.softmax_scale, True)
        out = out.to(torch.bfloat16)
        return peers.with_keepalive(lambda: (out.clone(), lse.clone()), batch, q8, descale_q)


def test_fp8_run_config_times_ours_against_our_bf16_path_and_flashmla_fp8(cpu_harness):
    ours, baseline = peers.MlaBackendFp8Peer(), peers.MlaBackendBf16BaselinePeer()
    ours.us, baseline.us = 80.0, 150.0  # what the fake graphs report
    fleet = {"mla_backend": ours, "mla_backend_bf16": baseline, "flashmla_fp8": _FakeFlashMLAFp8(us=100.0)}
    config = bench.Config(8, 300, 16, 1, kv="fp8")
    record = bench.run_config(config, fleet, reps=50, warmup=1, l2_bytes=1, device=torch.device("cpu"),
                              ceilings=CEILINGS, run={"id": "r", "commit": "c", "date": "d"})
    got = record["peers"]
    assert all(entry["check"]["passed"] for entry in got.values()), got
    sum_seqlen = 8 * 300
    fp8_bytes = bench.decode_bytes(sum_seqlen, 8, 1, 16, kv_bytes=1)
    assert record["kv"] == "fp8" and record["bytes"] == fp8_bytes
    assert got["mla_backend"]["bytes"] == got["flashmla_fp8"]["bytes"] == fp8_bytes
    assert got["mla_backend_bf16"]["bytes"] == bench.decode_bytes(sum_seqlen, 8, 1, 16)  # reads the bf16 cache
    assert got["mla_backend"]["gbps"] == pytest.approx(fp8_bytes / 80.0 / 1e3, abs=0.1)
    # the baseline at the bf16 tolerances; ours (q rounded to e4m3 per row) and FlashMLA's fp8 q at their own
    assert "out_rel_tol" not in got["mla_backend_bf16"]["check"]
    assert got["mla_backend"]["check"]["out_rel_tol"] == peers.FP8_Q_OUT_REL_TOL
    fm = got["flashmla_fp8"]["check"]
    assert (fm["out_rel_tol"], fm["lse_abs_tol"]) == (peers.FP8_Q_OUT_REL_TOL, peers.FP8_Q_LSE_ABS_TOL)
    assert bench.OUT_REL_TOL < fm["rel_err_out"] < peers.FP8_Q_OUT_REL_TOL / 1.5
    # the bf16 baseline is a ratio, never the best peer
    assert record["best_peer"] == {"name": "flashmla_fp8", "us": 100.0} and record["ratio_vs_best_peer"] == 1.25
    assert record["speedup_vs"] == {"mla_backend_bf16": 1.875, "flashmla_fp8": 1.25}
    assert record["targets"] == {}  # not a config of the fp8 grid: no target


def test_fp8_peers_refuse_a_bf16_batch_and_load_without_the_bundle(clean_vllm_modules):
    batch = bench.make_input_set(bench.Config(1, 64, 16, 1), [64], seed=0, device=torch.device("cpu"))
    with pytest.raises(peers.PeerUnavailable, match="fp8 cache"):
        peers.MlaBackendFp8Peer().prepare(batch)
    loaded = peers.load_peers(None, kv="fp8")
    assert list(loaded) == ["mla_backend", "mla_backend_bf16", "flashmla_fp8", "flashmla_sglang_fp8"] == list(
        peers.FP8_PEER_NAMES)
    assert loaded["mla_backend"].available and loaded["mla_backend"].kv_bytes == 1
    assert loaded["mla_backend_bf16"].available and loaded["mla_backend_bf16"].kv_bytes == 2
    assert not loaded["flashmla_fp8"].available and "no peer bundle" in loaded["flashmla_fp8"].error
    assert list(peers.load_peers(None, names=("flashmla_fp8",), kv="fp8")) == ["flashmla_fp8"]
    with pytest.raises(ValueError):
        peers.load_peers(None, kv="fp16")


def test_flashmla_fp8_step_calls_vllms_fp8_dense_path_as_flashmla_impl_does():
    calls = {}

    # vLLM 0.26 vllm/v1/attention/ops/flashmla.py, the signatures the peer calls (keywords must match)
    def get_mla_metadata_dense_fp8(cache_seqlens, num_q_tokens_per_head_k, num_heads_k):
        calls["meta"] = (cache_seqlens, num_q_tokens_per_head_k, num_heads_k)
        return torch.zeros(4, 8, dtype=torch.int32), torch.zeros(cache_seqlens.shape[0] + 1, dtype=torch.int32)

    def flash_mla_with_kvcache_fp8(q, k_cache, block_table, cache_seqlens, head_dim_v, tile_scheduler_metadata,
                                   num_splits, softmax_scale=None, causal=False, descale_q=None, descale_k=None):
        calls["fwd"] = dict(q=q, k_cache=k_cache, head_dim_v=head_dim_v, causal=causal, descale_q=descale_q,
                            descale_k=descale_k, softmax_scale=softmax_scale, num_splits=num_splits)
        b, s_q, h_q, _ = q.shape
        return torch.zeros(b, s_q, h_q, head_dim_v, dtype=torch.bfloat16), torch.zeros(b, h_q, s_q)

    peer = peers.Peer.__new__(peers.FlashMLAFp8Peer)
    peers.Peer.__init__(peer)
    peer.flashmla = type(sys)("fake_flashmla")
    peer.flashmla.get_mla_metadata_dense_fp8 = get_mla_metadata_dense_fp8
    peer.flashmla.flash_mla_with_kvcache_fp8 = flash_mla_with_kvcache_fp8
    config = bench.Config(3, 100, 16, 2, kv="fp8")
    batch = bench.make_input_set(config, [100, 64, 1], seed=1, device=torch.device("cpu"))
    step = peer.prepare(batch)
    assert calls["meta"][0] is batch.cache_seqlens and calls["meta"][1:] == (32, 1)
    out, lse = step()
    fwd = calls["fwd"]
    assert fwd["q"].dtype == torch.float8_e4m3fn and fwd["q"].shape == batch.q.shape
    assert fwd["k_cache"].dtype == torch.float8_e4m3fn and fwd["k_cache"].shape == (4, 64, 1, 576)
    assert fwd["descale_k"] is batch.descale_k and fwd["descale_q"].shape == (1,)
    assert fwd["head_dim_v"] == 512 and fwd["causal"] is True and fwd["softmax_scale"] == bench.SOFTMAX_SCALE
    assert out.shape == (3, 2, 16, 512) and lse.shape == (3, 16, 2) and not peer.lse_base2
    assert any(t is fwd["q"] for t in step.keepalive) and any(t is fwd["num_splits"] for t in step.keepalive)
    assert peer.kv_bytes == 1 and peer.out_rel_tol == peers.FP8_Q_OUT_REL_TOL


def _fp8_doc(results):
    doc = _doc(results)
    doc["kv"] = "fp8"
    doc["protocol"] = bench.protocol_info(100, "fp8")
    doc["peer_order"] = list(peers.FP8_PEER_NAMES)
    doc["peers"] = {"mla_backend": {"label": "ours (mla_backend, fp8 e4m3 KV cache, descale_k)", "available": True,
                                    "error": None},
                    "mla_backend_bf16": {"label": peers.MlaBackendBf16BaselinePeer.label, "available": True,
                                         "error": None},
                    "flashmla_fp8": {"label": peers.FlashMLAFp8Peer.label, "available": True, "error": None}}
    return doc


def _fp8_record(key, ours_us, bf16_us, flashmla_us):
    config = dataclasses.replace(bench.Config.parse(key), kv="fp8")
    total = sum(bench.make_seqlens(config))
    flops = bench.decode_flops(total, config.s_q, config.h_q)
    check = {"passed": True, "rel_err_out": 0.004, "max_abs_err_lse": 1e-5, "problems": []}

    def timed(us, kv_bytes):
        return bench.timed_entry([us], bench.decode_bytes(total, config.b, config.s_q, config.h_q, kv_bytes), flops,
                                 CEILINGS, check)

    entries = {"mla_backend": timed(ours_us, 1), "mla_backend_bf16": timed(bf16_us, 2)}
    if flashmla_us is not None:
        entries["flashmla_fp8"] = timed(flashmla_us, 1)
    else:
        entries["flashmla_fp8"] = {"error": "PeerUnavailable: peer bundle: no .peers"}
    return bench.result_record(config, bench.make_seqlens(config), 11, [0], entries,
                               {"id": "run1", "commit": "abc", "date": "d", "ceilings": CEILINGS})


def test_fp8_results_files_markdown_table_and_cli(tmp_path):
    from mla_backend.cli import bench as cli_bench

    doc = _fp8_doc([_fp8_record("b128/s4096/h16/q1", 80.0, 149.5, 120.0),
                    _fp8_record("b64/s16384/h16/q1", 170.0, 300.0, 190.0),
                    _fp8_record("b1/s32768/h16/q1", 16.0, 24.5, None)])
    json_path, md_path = bench_report.write_results(doc, tmp_path, bench.results_stem("h200", "fp8"))
    assert (json_path.name, md_path.name) == ("h200_fp8.json", "h200_fp8.md")
    loaded = json.loads(json_path.read_text())
    assert loaded["kv"] == "fp8" and all(r["kv"] == "fp8" for r in loaded["results"])
    first, second, third = loaded["results"]
    assert first["speedup_vs"] == {"mla_backend_bf16": pytest.approx(1.869), "flashmla_fp8": 1.5}
    assert first["best_peer"]["name"] == "flashmla_fp8" and first["ratio_vs_best_peer"] == 1.5
    assert third["best_peer"] is None and third["speedup_vs"] == {"mla_backend_bf16": pytest.approx(1.531)}
    checks = {(r["key"], c["peer"]): c["met"] for r in loaded["results"] for c in bench_report.fp8_targets(r)}
    assert checks == {("b128/s4096/h16/q1", "mla_backend_bf16"): True, ("b128/s4096/h16/q1", "flashmla_fp8"): True,
                      ("b64/s16384/h16/q1", "mla_backend_bf16"): False, ("b64/s16384/h16/q1", "flashmla_fp8"): False,
                      ("b1/s32768/h16/q1", "flashmla_fp8"): None}
    summary = loaded["summary"]
    assert (summary["targets_met"], summary["targets"]) == (2, 5)
    assert summary["geomean_speedup_vs"]["flashmla_fp8"] == pytest.approx(math.sqrt(1.5 * 190 / 170), abs=1e-3)
    assert first["peers"]["mla_backend"]["gbps"] == pytest.approx(first["bytes"] / 80.0 / 1e3, abs=0.1)
    md = md_path.read_text()
    assert "## fp8 KV cache: ours vs our bf16 path and FlashMLA fp8" in md
    assert "| b128/s4096/h16/q1 | 80.0 |" in md and "1.87x (≥ 1.8x: met)" in md and "1.50x (≥ 1.2x: met)" in md
    assert "1.76x (≥ 1.8x: **missed**)" in md and "— (≥ 1.2x: not measured)" in md and "| n/a |" in md
    assert "Targets met: 2 of 5." in md and "KV quantized to float8_e4m3fn" in md
    assert "`flashmla_fp8`, `flashmla_sglang_fp8`: q quantized to e4m3 as well" in md and f"≤ {peers.FP8_Q_OUT_REL_TOL}" in md
    assert bench.target_lines(loaded["results"])[0] == "fp8 targets met: 2 of 5"
    assert any("MISSED" in line for line in bench.target_lines(loaded["results"]))
    table = cli_bench.format_table(loaded)
    header = next(line for line in table.splitlines() if line.startswith("config "))
    assert "ours bf16" in header and "FlashMLA fp8" in header
    assert bench.main(["--render", "--card", "h200", "--kv", "fp8", "--out-dir", str(tmp_path)]) == 0
    assert md_path.read_text() == md
    pytest.importorskip("matplotlib")
    assert cli_bench.plot(loaded, tmp_path / "fp8.png").stat().st_size > 10_000


def test_ncu_sass_summary_reads_source_counters(tmp_path):
    header = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Warp Stall Sampling (Not-issued Samples)",
              "Instructions Executed", "stall_wait", "stall_barrier", "stall_wait (Not Issued)"]
    rows = [["0x7f00000d0000", "      HGMMA.64x64x16.F32.BF16 R1, gdesc[UR4], R1, gsb0", "10", "10", "4", "8", "2", "8"],
            ["0x7f00000d0010", "      WARPGROUP.DEPBAR.LE gsb0, 0x0", "30", "30", "4", "0", "30", "0"],
            ["0x7f00000d0020", "      @!P0  BRA 0x7f00000d0000", "60", "60", "1,000", "60", "0", "60"]]
    path = tmp_path / "k_sass.csv"
    path.write_text('"Kernel Name","k",\n' + "\n".join(",".join(f'"{x}"' for x in row) for row in [header, *rows]) + "\n")
    lines = ncu_sass_summary.read_lines(path)
    assert [line.address for line in lines] == ["d0000", "d0010", "d0020"]
    assert lines[2].executed == 1000 and lines[1].stalls == {"wait": 0, "barrier": 30}
    assert [ncu_sass_summary.opcode(line.source) for line in lines] == ["HGMMA", "WARPGROUP", "BRA"]
    assert ncu_sass_summary.ranges(lines, "d0000-d0010", per=4).startswith(
        "d0000-d0010:  40.0% of samples,        2 instructions a warp-block; barrier 80%, wait 20%")
    assert ncu_sass_summary.cuts(lines, "DEPBAR").splitlines()[0].startswith("d0010  40.0% of samples")
    assert "d0020  60.0% wait" in ncu_sass_summary.summary(lines, 5)
