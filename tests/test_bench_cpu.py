"""CPU tests of the benchmark's pure-Python parts: work formulas, configs, input sets, results files,
the peer bundle's pack/unpack round trip and the vLLM import shim. The GPU timing itself runs on the box."""

import json
import random
import sys
import zipfile
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench_decode as bench  # noqa: E402
import peers  # noqa: E402
import peers_bundle  # noqa: E402


# --- work formulas ------------------------------------------------------------------------------------


def test_bytes_and_flops_reproduce_design_peer_table():
    # DESIGN.md: b128/s4096/h16/q1, FA3-MLA 221.2 µs -> 2751 GB/s, 83 TFLOPS.
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


def test_seqlens_fixed_and_varlen():
    assert bench.make_seqlens(bench.Config(4, 1024, 16, 1)) == [1024] * 4
    config = bench.Config(128, 4096, 16, 4, varlen=True)
    seqlens = bench.make_seqlens(config)
    assert seqlens == bench.make_seqlens(config)  # seeded by the config
    assert len(seqlens) == 128 and min(seqlens) >= 4 and len(set(seqlens)) > 64
    assert 0.8 * 4096 < sum(seqlens) / 128 < 1.2 * 4096


def test_card_slug():
    assert bench.card_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert bench.card_slug("NVIDIA H200") == "h200"
    assert bench.card_slug("NVIDIA H100 PCIe") == "h100"
    assert bench.card_slug("NVIDIA GH200 480GB") == "gh200"
    assert bench.card_slug("NVIDIA GeForce RTX 4090") == "geforce-rtx-4090"


# --- input sets and the per-config loop (CPU stand-ins for graph capture and timing) ------------------


def test_input_set_pages_are_a_permutation():
    config = bench.Config(3, 100, 2, 1, varlen=False)
    batch = bench.make_input_set(config, [100, 1, 130], seed=7, device=torch.device("cpu"))
    assert batch.q.shape == (3, 1, 2, 576) and batch.q.dtype == torch.bfloat16
    assert batch.k_cache.shape == (2 + 1 + 3, 64, 576)
    assert float(batch.q.abs().max()) <= 1 and float(batch.k_cache.abs().max()) <= 1
    used = torch.cat([batch.block_table[0, :2], batch.block_table[1, :1], batch.block_table[2, :3]])
    assert sorted(used.tolist()) == list(range(6))
    assert batch.cache_seqlens.tolist() == [100, 1, 130] and batch.max_seqlen_k == 130
    assert (batch.b, batch.s_q, batch.h_q) == (3, 1, 2)


class _FakeGraph:
    def replay(self):
        pass


class _FakePeer(peers.Peer):
    def __init__(self, name, offset=0.0, fail=None, lse_base2=False):
        super().__init__()
        self.name, self.label, self.offset, self.fail, self.lse_base2 = name, name, offset, fail, lse_base2

    def _prepare(self, batch):
        if self.fail:
            raise RuntimeError(self.fail)
        out = batch.q[..., :512].float() + self.offset
        lse = torch.zeros(batch.b, batch.h_q, batch.s_q)
        return lambda: (out, lse / (0.6931471805599453 if self.lse_base2 else 1.0))


def test_run_config_checks_each_peer_against_ours_and_keeps_going(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(bench, "capture_steps",
                        lambda peer, batches: ([_FakeGraph()] * len(batches),
                                               [peer.prepare(b)() for b in batches]))
    timings = {"mla_backend": 10.0, "p_fast": 8.0, "p_slow": 20.0}
    current = {}

    def fake_measure(peer, batches, baseline, reps, warmup):
        current["name"] = peer.name
        return real_measure(peer, batches, baseline, reps, warmup)

    real_measure = bench.measure_peer
    monkeypatch.setattr(bench, "measure_peer", fake_measure)
    monkeypatch.setattr(bench, "time_replays", lambda graphs, reps, warmup: [timings[current["name"]]] * reps)
    unavailable = _FakePeer("gone")
    unavailable.error = "ImportError: nope"
    fleet = {"mla_backend": _FakePeer("mla_backend"), "p_fast": _FakePeer("p_fast", 0.25, lse_base2=True),
             "p_slow": _FakePeer("p_slow"), "p_broken": _FakePeer("p_broken", fail="boom"), "gone": unavailable}
    config = bench.Config(2, 128, 4, 1)
    record = bench.run_config(config, fleet, reps=50, warmup=1, l2_bytes=50_000_000,
                              device=torch.device("cpu"), run={"commit": "c", "date": "d"})
    assert record["check_baseline"] == "mla_backend"
    assert record["input_sets"] >= 4 and record["sum_seqlen"] == 256
    got = record["peers"]
    assert "gone" not in got
    assert got["p_fast"]["max_abs_diff_out"] == pytest.approx(0.25)
    assert got["p_fast"]["max_abs_diff_lse"] == pytest.approx(0.0, abs=1e-6)  # base-2 lse converted
    assert got["p_slow"]["max_abs_diff_out"] == 0.0
    assert got["p_broken"] == {"error": "RuntimeError: boom"}
    assert got["mla_backend"]["us"] == 10.0
    assert record["speedup_vs"] == {"p_fast": 0.8, "p_slow": 2.0}


# --- results files ------------------------------------------------------------------------------------


def _doc(results, commit="abc"):
    return {
        "schema": 1,
        "env": {"card": "h100", "device_name": "NVIDIA H100 80GB HBM3", "sm_count": 132, "l2_bytes": 52428800,
                "driver": "580.1", "torch": "2.11.0+cu130", "cuda": "13.0", "triton": "3.6.0",
                "python": "3.12.3", "commit": commit, "date": "2026-11-25T00:00:00+00:00"},
        "protocol": bench.protocol_info(100), "peer_order": ["mla_backend", "flashmla", "triton_mla"],
        "peers": {"mla_backend": {"label": "ours", "available": True, "error": None},
                  "flashmla": {"label": "FlashMLA", "available": True, "error": None},
                  "triton_mla": {"label": "Triton", "available": False, "error": "ImportError: no triton"}},
        "results": results,
    }


def _record(key, ours_us, flashmla_us):
    config = bench.Config.parse(key)
    seqlens = bench.make_seqlens(config)
    total = sum(seqlens)
    nbytes, flops = bench.decode_bytes(total, config.b, config.s_q, config.h_q), bench.decode_flops(
        total, config.s_q, config.h_q)
    entries = {"mla_backend": bench.metrics(ours_us, nbytes, flops),
               "flashmla": {**bench.metrics(flashmla_us, nbytes, flops), "max_abs_diff_out": 0.0039,
                            "max_abs_diff_lse": 1e-5}}
    return bench.result_record(config, seqlens, 4, entries, "mla_backend", {"commit": "abc", "date": "d"})


def test_write_results_json_and_markdown(tmp_path):
    doc = _doc([_record("b128/s4096/h16/q1", 200.0, 256.6), _record("b1/s32768/h16/q1", 40.0, 34.0)])
    json_path, md_path = bench.write_results(doc, tmp_path, "h100")
    assert (json_path.name, md_path.name) == ("h100.json", "h100.md")
    loaded = json.loads(json_path.read_text())
    assert loaded["env"]["torch"] == "2.11.0+cu130" and loaded["env"]["commit"] == "abc"
    first = loaded["results"][0]
    assert first["speedup_vs"] == {"flashmla": pytest.approx(1.283)}
    assert first["bytes"] == bench.decode_bytes(128 * 4096, 128, 1, 16)
    md = md_path.read_text()
    assert "| b128/s4096/h16/q1 | 524288 | 200.0 (3042, 91) | 256.6 (2371, 71) | 1.28x vs `flashmla` |" in md
    assert "| b1/s32768/h16/q1 | 0.85 |" in md
    assert "`triton_mla`: Triton: unavailable: ImportError: no triton" in md
    assert "3.9e-03, 1.0e-05" in md
    assert "driver 580.1" in md and "commit abc" in md


def test_write_results_merge_keeps_other_configs(tmp_path):
    bench.write_results(_doc([_record("b128/s4096/h16/q1", 200.0, 256.6), _record("b8/s8192/h16/q1", 50, 77)]),
                        tmp_path, "h100")
    bench.write_results(_doc([_record("b8/s8192/h16/q1", 45, 77)], commit="def"), tmp_path, "h100", merge=True)
    loaded = json.loads((tmp_path / "h100.json").read_text())
    assert [r["key"] for r in loaded["results"]] == ["b128/s4096/h16/q1", "b8/s8192/h16/q1"]
    assert loaded["results"][1]["peers"]["mla_backend"]["us"] == 45 and loaded["env"]["commit"] == "def"
    bench.write_results(_doc([_record("b8/s8192/h16/q1", 45, 77)]), tmp_path, "h100")
    assert len(json.loads((tmp_path / "h100.json").read_text())["results"]) == 1


# --- peers: vLLM heuristics, bundle, shim ---------------------------------------------------------------


def test_triton_split_count_follows_vllm():
    assert [peers.triton_num_kv_splits(n, 132) for n in (1, 511, 1024, 4096, 5000, 32768)] == [1, 1, 2, 8, 16, 64]
    assert peers.triton_num_kv_splits(32768, 4) == 8


def test_bundle_round_trip_and_corruption(tmp_path):
    files = {"peers/vllm/a.py": b"A = 1\n", "peers/vllm/sub/lib.so": random.Random(0).randbytes(5000)}
    archive = tmp_path / "build" / peers_bundle.ARCHIVE_NAME
    archive.parent.mkdir()
    peers_bundle.write_archive(files, archive)
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    parts = peers_bundle.split(archive, parts_dir, 1000)
    assert len(parts) > 1 and all(p.stat().st_size <= 1000 for p in parts)
    assert [p.name for p in parts][:2] == ["peers.tar.xz.part-00", "peers.tar.xz.part-01"]
    (parts_dir / "peers.sha256").write_text(f"{peers_bundle.sha256_file(archive)}  {peers_bundle.ARCHIVE_NAME}\n")
    root = peers.unpack_bundle(parts_dir, tmp_path / "cache")
    assert (root / "vllm" / "a.py").read_bytes() == files["peers/vllm/a.py"]
    assert (root / "vllm" / "sub" / "lib.so").read_bytes() == files["peers/vllm/sub/lib.so"]
    assert peers.resolve_bundle(parts_dir.parent / "cache" / root.parent.name) == root
    # Same bytes twice give the same archive (the sha256 printed for the parts is reproducible).
    again = tmp_path / "again.tar.xz"
    peers_bundle.write_archive(files, again)
    assert peers_bundle.sha256_file(again) == peers_bundle.sha256_file(archive)
    parts[-1].unlink()
    with pytest.raises(ValueError, match="sha256"):
        peers.unpack_bundle(parts_dir, tmp_path / "cache2")


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
    files = peers_bundle.collect_site_files([wheel])
    assert files == {"peers/site/demo/__init__.py": b"X = 1\n",
                     "peers/site/demo-1.0.dist-info/METADATA": b"Name: demo\n"}


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
    assert probe.HOPPER == (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9)
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
