"""Diagnostic: each implementation's decode step replayed alone for a few seconds while nvidia-smi samples the card.

Where a row runs into the card's power cap (b132/s8192/h128/q2 on the H200: the SM clock dips from 1980 MHz with
the software power cap flagged), its time depends on the clock, and the clock on how much power the kernel draws.
This prints, per implementation, the step time it sustains alone and the clock, power and power-cap share while it
runs, so a kernel that is slower per cycle can be told from one that draws more power. Not the benchmark:
bench_decode.py's interleaved, checked numbers are the ones that count. Outputs are checked against the fp32
reference before and after the steady window, as the benchmark does.

    python benchmarks/power_probe.py --peers .peers [--configs b132/s8192/h128/q2] [--seconds 3]
                                     [--names mla_backend,flashmla,fa3_mla] [--kv fp8 --names mla_backend,flashmla_fp8]
                                     [--unchecked]   # a diagnostic build (wide_diagnostics.py): outputs wrong by design
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import bench_decode as bench  # noqa: E402
from peers import KV_DTYPES, load_peers  # noqa: E402

SMI_FIELDS = "timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active"
SMI_PERIOD_MS = 50
POWER_CAP_REASON = 0x4  # NVML's software power cap among clocks_throttle_reasons
SETTLE_S = 0.5          # the first part of a window, while the clock settles, is not summarized
CHUNK_REPLAYS = 20      # replays timed together by one pair of CUDA events


@dataclass
class Sample:
    t: float            # host time, seconds since the epoch
    sm_mhz: int
    watts: float
    power_capped: bool


def parse_smi_line(line: str) -> Sample | None:
    """One `nvidia-smi --query-gpu=SMI_FIELDS --format=csv,noheader,nounits` line; None for anything else."""
    parts = [part.strip() for part in line.split(",")]
    if len(parts) != 4:
        return None
    try:
        t = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        return Sample(t, int(parts[1]), float(parts[2]), bool(int(parts[3], 16) & POWER_CAP_REASON))
    except ValueError:
        return None


def summarize_window(samples: list[Sample], start: float, end: float) -> dict:
    """Median SM clock and power, and the share of samples with the power cap active, in [start + SETTLE_S, end]."""
    inside = [s for s in samples if start + SETTLE_S <= s.t <= end]
    if not inside:
        return {"samples": 0}
    return {"samples": len(inside), "sm_mhz": statistics.median(s.sm_mhz for s in inside),
            "watts": statistics.median(s.watts for s in inside),
            "power_capped": sum(s.power_capped for s in inside) / len(inside)}


def steady_replays(graphs: list, seconds: float) -> tuple[float, float, list[tuple[float, float]]]:
    """Replays the graphs in rotation for `seconds`; returns the window (host start, end) and, per chunk of
    CHUNK_REPLAYS, (host time at its end, µs per replay)."""
    chunks, start, i = [], time.time(), 0
    while time.time() - start < seconds:
        begin, finish = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(CHUNK_REPLAYS):
            graphs[i % len(graphs)].replay()
            i += 1
        finish.record()
        finish.synchronize()
        chunks.append((time.time(), begin.elapsed_time(finish) * 1000 / CHUNK_REPLAYS))
    return start, time.time(), chunks


def probe_peer(name: str, peer, batches, reference, seconds: float, checked: bool = True) -> dict:
    captured = bench.capture_steps(peer, batches)

    def check() -> dict:
        if not checked:
            return {"passed": True, "problems": []}
        return bench.replay_and_check(captured[0], reference, peer.lse_base2, bench.peer_tolerances(peer))

    try:
        before = check()
        if not before["passed"]:
            return {"name": name, "error": "check failed: " + "; ".join(before["problems"])}
        start, end, chunks = steady_replays([item.graph for item in captured], seconds)
        after = check()
    finally:
        bench.release(captured)
    if not after["passed"]:
        return {"name": name, "error": "check failed after the window: " + "; ".join(after["problems"])}
    steady = [us for t, us in chunks if t >= start + SETTLE_S] or [us for _, us in chunks]
    return {"name": name, "start": start, "end": end, "us": statistics.median(steady), "us_min": min(steady)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", help="the .peers parts folder or an extracted peer bundle")
    parser.add_argument("--configs", default="b132/s8192/h128/q2")
    parser.add_argument("--names", default="mla_backend,flashmla,fa3_mla,flashinfer_mla")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--kv", choices=KV_DTYPES, default="bf16", help="the cache dtype (and its peers' set)")
    parser.add_argument("--unchecked", action="store_true",
                        help="no output checks: for diagnostic builds whose outputs are wrong by design")
    args = parser.parse_args()
    props = torch.cuda.get_device_properties(0)
    print(props.name, torch.__version__, flush=True)
    l2_bytes = max(getattr(props, "L2_cache_size", 0), bench.L2_BYTES_FLOOR)
    peers = load_peers(args.peers, tuple(args.names.split(",")), kv=args.kv)
    with tempfile.TemporaryFile("w+") as smi_out:
        smi = subprocess.Popen(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits",
                                "-lms", str(SMI_PERIOD_MS)], stdout=smi_out, stderr=subprocess.DEVNULL, text=True)
        results = []
        try:
            for config in (replace(config, kv=args.kv) for config in bench.parse_configs(args.configs)):
                seqlens, batches, reference = bench.config_inputs(config, l2_bytes, torch.device("cuda"))
                for name, peer in peers.items():
                    if not peer.available:
                        results.append((config.key, {"name": name, "error": f"unavailable: {peer.error}"}))
                        continue
                    try:
                        results.append((config.key, probe_peer(name, peer, batches, reference, args.seconds,
                                                               checked=not args.unchecked)))
                    except Exception as exc:  # noqa: BLE001 - reported per peer, as the benchmark does
                        results.append((config.key, {"name": name, "error": f"{type(exc).__name__}: {exc}"}))
                        if not bench.cuda_context_alive():
                            raise
                del batches
                bench.free_memory()
        finally:
            smi.terminate()
            smi.wait()
        smi_out.seek(0)
        samples = [s for s in map(parse_smi_line, smi_out) if s is not None]
    for key, result in results:
        if "error" in result:
            print(f"{key:<22} {result['name']:<16} not probed: {result['error']}")
            continue
        window = summarize_window(samples, result["start"], result["end"])
        if not window["samples"]:
            print(f"{key:<22} {result['name']:<16} {result['us']:8.1f} us  (no nvidia-smi samples in the window)")
            continue
        print(f"{key:<22} {result['name']:<16} {result['us']:8.1f} us (min {result['us_min']:.1f})  "
              f"SM {window['sm_mhz']:.0f} MHz  {window['watts']:.0f} W  power cap {window['power_capped']:.0%}  "
              f"{window['watts'] * result['us'] * 1e-3:.1f} mJ a step  [{window['samples']} samples]")


if __name__ == "__main__":
    main()
