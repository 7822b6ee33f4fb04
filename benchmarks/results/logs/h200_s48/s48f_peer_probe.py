"""s48f's driver: benchmarks/probe_decode.py's probe() on one peer (default sgl-kernel's FlashMLA) instead of ours, so ncu
can profile the peer's kernel in the same setting (graph replays, the same inputs) as ours.

    python benchmarks/results/logs/h200_s48/s48f_peer_probe.py CONFIGS REPS [PEER]
"""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import bench_decode as bench  # noqa: E402
import probe_decode  # noqa: E402
from peers import load_peers  # noqa: E402

name = sys.argv[3] if len(sys.argv) > 3 else "flashmla_sglang"
peer = load_peers(None, (name,))[name]
if peer.error is not None:
    sys.exit(f"{name}: {peer.error}")
props = torch.cuda.get_device_properties(0)
l2_bytes = max(getattr(props, "L2_cache_size", 0), bench.L2_BYTES_FLOOR)
for config in bench.parse_configs(sys.argv[1]):
    print(probe_decode.probe(config, peer, int(sys.argv[2]), l2_bytes, torch.device("cuda")), flush=True)
