"""Side-by-side MLA decode benchmark: ours and every available peer, same process, same card.

Protocol (DESIGN.md, "Benchmark protocol"): one decode step = metadata + kernel + combine, captured as one
CUDA graph per implementation and input set; timed by CUDA events around each replay; median of >= 50
replays; >= 4 input sets (separate q / k_cache / block_table allocations, randomly permuted pages) are
replayed in rotation, with enough of them that their KV totals more than 4x the L2, so KV never sits in L2.
Each peer's output on the first input set is compared with ours before it is timed.

    GB/s   = (Σseqlen·576 + b·s_q·h_q·(576+512))·2 / t
    TFLOPS = 2·h_q·s_q·(576+512)·Σseqlen / t
    speedup vs a peer = t_peer / t_ours (> 1: ours is faster)

Usage on the GPU box (peers from `python benchmarks/peers_bundle.py --out .peers`, carried as .peers):

    python benchmarks/bench_decode.py --quick --peers .peers [--varlen] [--out-dir benchmarks/results]
    python benchmarks/bench_decode.py --configs b128/s4096/h16/q1,b1/s32768/h128/q1/varlen --peers .peers
    python benchmarks/bench_decode.py --b 128 132 --h-q 128 --peers .peers --merge   # a slice of the grid

Results go to <out-dir>/<card>.json and <card>.md, rewritten after every config (a run cut short keeps
what it finished); --merge keeps the configs of an earlier run that this run does not repeat.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import statistics
import subprocess
import sys
import zlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers import HEAD_DIM, HEAD_DIM_V, PAGE_SIZE, PEER_NAMES, DecodeBatch, Peer, load_peers  # noqa: E402

OURS = "mla_backend"

GRID_B = (1, 8, 32, 64, 128, 132)
GRID_S_K = (1024, 4096, 8192, 16384, 32768)
GRID_H_Q = (16, 32, 64, 128)
GRID_S_Q = (1, 2, 4)
QUICK = (
    "b128/s4096/h16/q1", "b128/s4096/h128/q1", "b128/s4096/h128/q2", "b132/s8192/h128/q2",
    "b64/s16384/h16/q1", "b32/s1024/h16/q1", "b1/s32768/h128/q1", "b1/s32768/h16/q1", "b8/s8192/h16/q1",
)

L2_BYTES_FLOOR = 50 * 1000 * 1000  # H100's 50 MB L2; the card's own size is used when larger
L2_MULTIPLE = 4  # KV of all input sets together > 4x L2
MIN_INPUT_SETS = 4
MIN_REPS = 50
SOFTMAX_SCALE = 192 ** -0.5  # DeepSeek's qk_head_dim**-0.5, what vLLM passes (mscale 1)
HOST_LEAD_CYCLES_PER_REP = 200_000  # GPU spin (~0.1 ms per replay) while the host queues the timed replays


# ----------------------------------------------------------------------------------------------------
# Configs


@dataclass(frozen=True)
class Config:
    b: int
    s_k: int
    h_q: int
    s_q: int
    varlen: bool = False

    @property
    def key(self) -> str:
        return f"b{self.b}/s{self.s_k}/h{self.h_q}/q{self.s_q}" + ("/varlen" if self.varlen else "")

    @classmethod
    def parse(cls, text: str) -> Config:
        match = re.fullmatch(r"b(\d+)/s(\d+)/h(\d+)/q(\d+)(/varlen)?", text.strip())
        if match is None:
            raise ValueError(f"config {text!r} is not of the form b128/s4096/h16/q1[/varlen]")
        b, s_k, h_q, s_q = (int(g) for g in match.groups()[:4])
        if min(b, s_k, h_q, s_q) < 1:
            raise ValueError(f"config {text!r}: every size must be >= 1")
        return cls(b, s_k, h_q, s_q, match.group(5) is not None)


def parse_configs(text: str) -> list[Config]:
    """Comma- or space-separated config keys."""
    return [Config.parse(item) for item in re.split(r"[,\s]+", text) if item]


def grid_configs(bs=GRID_B, s_ks=GRID_S_K, h_qs=GRID_H_Q, s_qs=GRID_S_Q) -> list[Config]:
    return [Config(b, s_k, h_q, s_q) for b in bs for s_k in s_ks for h_q in h_qs for s_q in s_qs]


def quick_configs() -> list[Config]:
    return [Config.parse(key) for key in QUICK]


def apply_varlen(configs: list[Config], mode: str) -> list[Config]:
    """mode 'off': as given; 'only': the varlen twin of each; 'both': each followed by its varlen twin."""
    twins = {"off": (False,), "only": (True,), "both": (False, True)}[mode]
    out: list[Config] = []
    for config in configs:
        for varlen in twins:
            twin = Config(config.b, config.s_k, config.h_q, config.s_q, varlen or config.varlen)
            if twin not in out:
                out.append(twin)
    return out


def make_seqlens(config: Config) -> list[int]:
    """Fixed: s_k for every request. Varlen: max(round(N(s_k, s_k/2)), s_q), seeded by the config."""
    if not config.varlen:
        return [config.s_k] * config.b
    rng = random.Random(zlib.crc32(config.key.encode()))
    return [max(round(rng.gauss(config.s_k, config.s_k / 2)), config.s_q) for _ in range(config.b)]


# ----------------------------------------------------------------------------------------------------
# Work, metrics, input-set count


def decode_bytes(sum_seqlen: int, b: int, s_q: int, h_q: int) -> int:
    """Bytes of one decode step: KV read once, q read and out written once (bf16)."""
    return (sum_seqlen * HEAD_DIM + b * s_q * h_q * (HEAD_DIM + HEAD_DIM_V)) * 2


def decode_flops(sum_seqlen: int, s_q: int, h_q: int) -> int:
    """FLOPs of one decode step: Q·Kᵀ over 576 columns and P·V over 512, causal masking not subtracted."""
    return 2 * h_q * s_q * (HEAD_DIM + HEAD_DIM_V) * sum_seqlen


def kv_cache_bytes(seqlens: list[int]) -> int:
    """Bytes of the pages one input set allocates (whole 64-token pages, bf16)."""
    return sum(math.ceil(s / PAGE_SIZE) for s in seqlens) * PAGE_SIZE * HEAD_DIM * 2


def num_input_sets(kv_bytes: int, l2_bytes: int) -> int:
    """Enough input sets that their KV together exceeds L2_MULTIPLE x L2, and at least MIN_INPUT_SETS."""
    needed = L2_MULTIPLE * l2_bytes // max(kv_bytes, 1) + 1
    return max(MIN_INPUT_SETS, needed)


def metrics(time_us: float, nbytes: int, flops: int) -> dict:
    return {"us": round(time_us, 2), "gbps": round(nbytes / time_us / 1e3, 1),
            "tflops": round(flops / time_us / 1e6, 1)}


def card_slug(device_name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100': the first word with letters and digits, vendor dropped."""
    words = [w for w in re.split(r"[\s_]+", device_name.lower()) if w and w != "nvidia"]
    for word in words:
        if re.search(r"[a-z]", word) and re.search(r"\d", word):
            return re.sub(r"[^a-z0-9]+", "-", word.split("-")[0]).strip("-")
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words)).strip("-") or "gpu"


# ----------------------------------------------------------------------------------------------------
# Results document


def result_record(config: Config, seqlens: list[int], input_sets: int, peers: dict, baseline: str | None,
                  run: dict) -> dict:
    """One config's entry: its work, each peer's outcome, and our speed-up over each timed peer."""
    sum_seqlen = sum(seqlens)
    record = {
        "key": config.key, **asdict(config), "sum_seqlen": sum_seqlen,
        "bytes": decode_bytes(sum_seqlen, config.b, config.s_q, config.h_q),
        "flops": decode_flops(sum_seqlen, config.s_q, config.h_q),
        "input_sets": input_sets, "check_baseline": baseline, "peers": peers, "run": run,
    }
    record["speedup_vs"] = speedups(peers)
    return record


def speedups(peers: dict) -> dict:
    ours = peers.get(OURS, {}).get("us")
    return {name: round(entry["us"] / ours, 3) for name, entry in peers.items()
            if name != OURS and ours and entry.get("us")}


def merge_results(old: dict | None, new: dict) -> dict:
    """old's records updated by new's: a config measured again keeps the peers that new did not run
    (so peers can be run in separate processes, one crash costing one run); each record's `run` names its
    commit."""
    if not old:
        return new
    old_records = {r["key"]: r for r in old.get("results", [])}
    merged = []
    for record in new["results"]:
        previous = old_records.pop(record["key"], None)
        if previous is not None:
            peers = {**previous["peers"], **record["peers"]}
            record = {**record, "peers": peers, "speedup_vs": speedups(peers)}
        merged.append(record)
    order = list(dict.fromkeys([*old.get("peer_order", []), *new.get("peer_order", [])]))
    return {**new, "peers": {**old.get("peers", {}), **new.get("peers", {})},
            "peer_order": sorted(order, key=lambda n: PEER_NAMES.index(n) if n in PEER_NAMES else len(PEER_NAMES)),
            "results": list(old_records.values()) + merged}


def _fmt_diff(value) -> str:
    return "—" if value is None else f"{value:.1e}"


def render_markdown(doc: dict) -> str:
    env, protocol = doc["env"], doc["protocol"]
    names = [n for n in doc["peer_order"] if any(n in r["peers"] for r in doc["results"])] or doc["peer_order"]
    others = [n for n in names if n != OURS]
    lines = [
        f"# MLA decode benchmark: {env['card']}",
        "",
        f"{env['device_name']} ({env['sm_count']} SMs, L2 {env['l2_bytes'] / 2**20:.0f} MiB), driver "
        f"{env['driver']}, torch {env['torch']}, CUDA {env['cuda']}, triton {env['triton']}, "
        f"Python {env['python']}; commit {env['commit']}; {env['date']}.",
        "",
        f"One decode step (metadata + kernel + combine) per CUDA graph; median of {protocol['reps']} replays "
        f"timed by CUDA events, {protocol['min_input_sets']}+ input sets in rotation with KV > "
        f"{protocol['l2_multiple']}x L2; bf16, page 64, causal. GB/s = {protocol['bytes']} / t; "
        f"TFLOPS = {protocol['flops']} / t. Written by benchmarks/bench_decode.py; do not edit by hand.",
        "",
        "Peers:",
    ]
    for name in doc["peer_order"]:
        info = doc["peers"].get(name, {})
        state = "available" if info.get("available") else f"unavailable: {info.get('error')}"
        lines.append(f"- `{name}`: {info.get('label', name)}: {state}")
    lines += ["", "## Time per decode step (µs; GB/s, TFLOPS)", ""]
    header = ["config", "Σseqlen"] + [f"`{n}`" for n in names] + ["ours vs best peer"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in doc["results"]:
        cells = [record["key"], str(record["sum_seqlen"])]
        for name in names:
            entry = record["peers"].get(name, {})
            if entry.get("us") is not None:
                cells.append(f"{entry['us']:.1f} ({entry['gbps']:.0f}, {entry['tflops']:.0f})")
            else:
                cells.append("n/a")
        speedups = record.get("speedup_vs", {})
        best = min(speedups.items(), key=lambda kv: kv[1], default=None)
        cells.append(f"{best[1]:.2f}x vs `{best[0]}`" if best else "—")
        lines.append("| " + " | ".join(cells) + " |")
    if others:
        lines += ["", "## Speed-up of ours over each peer (t_peer / t_ours; > 1: ours is faster)", ""]
        header = ["config"] + [f"vs `{n}`" for n in others]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for record in doc["results"]:
            speedups = record.get("speedup_vs", {})
            lines.append("| " + " | ".join([record["key"]] + [
                f"{speedups[n]:.2f}" if n in speedups else "—" for n in others]) + " |")
    lines += ["", "## Output check on input set 0 (max |Δ| against the baseline: out, lse)", ""]
    header = ["config", "baseline"] + [f"`{n}`" for n in names]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in doc["results"]:
        cells = [record["key"], f"`{record['check_baseline']}`" if record["check_baseline"] else "—"]
        for name in names:
            entry = record["peers"].get(name, {})
            if "max_abs_diff_out" in entry:
                cells.append(f"{_fmt_diff(entry['max_abs_diff_out'])}, {_fmt_diff(entry.get('max_abs_diff_lse'))}")
            else:
                cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    errors = [(r["key"], n, e["error"]) for r in doc["results"] for n, e in r["peers"].items() if e.get("error")]
    if errors:
        lines += ["", "## Not timed", ""]
        lines += [f"- {key} `{name}`: {error}" for key, name, error in errors]
    return "\n".join(lines) + "\n"


def write_results(doc: dict, out_dir: Path, card: str, merge: bool = False) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{card}.json", out_dir / f"{card}.md"
    if merge and json_path.exists():
        doc = merge_results(json.loads(json_path.read_text()), doc)
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    md_path.write_text(render_markdown(doc))
    return json_path, md_path


def protocol_info(reps: int) -> dict:
    return {
        "step": "metadata + kernel + combine, one CUDA graph per implementation and input set",
        "statistic": "median", "reps": reps, "timer": "CUDA events around each graph replay",
        "min_input_sets": MIN_INPUT_SETS, "l2_multiple": L2_MULTIPLE,
        "bytes": "(Σseqlen·576 + b·s_q·h_q·(576+512))·2", "flops": "2·h_q·s_q·(576+512)·Σseqlen",
        "softmax_scale": SOFTMAX_SCALE, "dtype": "bfloat16", "page_size": PAGE_SIZE, "causal": True,
    }


# ----------------------------------------------------------------------------------------------------
# GPU side


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def environment(commit: str, card: str | None) -> dict:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    return {
        "card": card or card_slug(props.name), "device_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}", "sm_count": props.multi_processor_count,
        "l2_bytes": getattr(props, "L2_cache_size", 0) or L2_BYTES_FLOOR, "memory_bytes": props.total_memory,
        "driver": driver_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "triton": triton_version, "python": platform.python_version(), "commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def make_input_set(config: Config, seqlens: list[int], seed: int, device: torch.device) -> DecodeBatch:
    """q and KV ~ randn/10 clamped to ±1; each request's pages are a random slice of a permutation."""
    gen = torch.Generator(device=device).manual_seed(seed)
    cpu_gen = torch.Generator().manual_seed(seed)
    pages = [math.ceil(s / PAGE_SIZE) for s in seqlens]
    num_blocks = max(sum(pages), 1)
    perm = torch.randperm(num_blocks, generator=cpu_gen, dtype=torch.int32)
    block_table = torch.zeros(config.b, max(max(pages), 1), dtype=torch.int32)
    start = 0
    for row, n in enumerate(pages):
        block_table[row, :n] = perm[start:start + n]
        start += n
    k_cache = torch.empty(num_blocks, PAGE_SIZE, HEAD_DIM, dtype=torch.bfloat16, device=device)
    k_cache.normal_(generator=gen).div_(10).clamp_(-1, 1)
    q = torch.empty(config.b, config.s_q, config.h_q, HEAD_DIM, dtype=torch.bfloat16, device=device)
    q.normal_(generator=gen).div_(10).clamp_(-1, 1)
    return DecodeBatch(q=q, k_cache=k_cache, block_table=block_table.to(device),
                       cache_seqlens=torch.tensor(seqlens, dtype=torch.int32, device=device),
                       softmax_scale=SOFTMAX_SCALE, causal=True, max_seqlen_k=max(seqlens))


def capture_steps(peer: Peer, batches: list[DecodeBatch]):
    """One CUDA graph per input set, sharing one memory pool (the replays never overlap)."""
    steps = [peer.prepare(batch) for batch in batches]
    for step in steps:  # eager warm-up: JIT compiles, lazy module loads, workspace sizing
        step()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    pool = torch.cuda.graph_pool_handle()
    graphs, outputs = [], []
    for step in steps:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            outputs.append(step())
        graphs.append(graph)
    return graphs, outputs


def time_replays(graphs: list, reps: int, warmup: int) -> list[float]:
    """Per-replay times in µs, replaying the graphs in rotation."""
    for i in range(warmup):
        graphs[i % len(graphs)].replay()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda._sleep(HOST_LEAD_CYCLES_PER_REP * reps)
    for i in range(reps):
        starts[i].record()
        graphs[i % len(graphs)].replay()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends, strict=True)]


def max_abs_diff(a: torch.Tensor | None, b: torch.Tensor | None, finite_only: bool = False) -> float | None:
    if a is None or b is None:
        return None
    a, b = a.float(), b.float()
    if finite_only:
        keep = torch.isfinite(b)
        if not bool(keep.any()):
            return None
        a, b = a[keep], b[keep]
    return float((a - b).abs().max())


def measure_peer(peer: Peer, batches: list[DecodeBatch], baseline: tuple | None, reps: int, warmup: int) -> tuple:
    """Capture, check against the baseline outputs (None: this peer's own become the baseline), time.

    Returns (entry without metrics, per-replay µs, the baseline outputs to use from now on).
    """
    graphs, outputs = capture_steps(peer, batches)
    graphs[0].replay()
    torch.cuda.synchronize()
    out, lse = outputs[0]
    lse = None if lse is None else lse.float() * (math.log(2.0) if peer.lse_base2 else 1.0)
    if baseline is None:
        baseline = (out.float().clone(), None if lse is None else lse.clone())
        entry = {"nan_in_out": bool(torch.isnan(out).any())}
    else:
        entry = {"max_abs_diff_out": max_abs_diff(out, baseline[0]),
                 "max_abs_diff_lse": max_abs_diff(lse, baseline[1], finite_only=True)}
    return entry, time_replays(graphs, reps, warmup), baseline


def run_config(config: Config, peers: dict[str, Peer], reps: int, warmup: int, l2_bytes: int,
               device: torch.device, run: dict) -> dict:
    seqlens = make_seqlens(config)
    sets = num_input_sets(kv_cache_bytes(seqlens), l2_bytes)
    sum_seqlen = sum(seqlens)
    nbytes = decode_bytes(sum_seqlen, config.b, config.s_q, config.h_q)
    flops = decode_flops(sum_seqlen, config.s_q, config.h_q)
    print(f"\n{config.key}: Σseqlen {sum_seqlen}, {sets} input sets of "
          f"{kv_cache_bytes(seqlens) / 2**20:.0f} MiB KV", flush=True)
    seed = zlib.crc32(config.key.encode())
    batches = [make_input_set(config, seqlens, seed + i, device) for i in range(sets)]
    results: dict[str, dict] = {}
    baseline_name, baseline = None, None
    for name, peer in peers.items():
        if not peer.available:
            continue  # reported once, in the document's peer list
        try:
            entry, times, baseline = measure_peer(peer, batches, baseline, reps, warmup)
            baseline_name = baseline_name or name
            entry.update(metrics(statistics.median(times), nbytes, flops), us_min=round(min(times), 2))
            check = ("  (check baseline)" if name == baseline_name else
                     f"  out max|Δ| {_fmt_diff(entry['max_abs_diff_out'])}, lse {_fmt_diff(entry['max_abs_diff_lse'])}")
            print(f"  {name:<15}{entry['us']:9.1f} µs {entry['gbps']:7.0f} GB/s {entry['tflops']:6.1f} TFLOPS"
                  f"{check}", flush=True)
        except Exception as exc:  # noqa: BLE001 - one peer's failure is a result, not the end of the run
            entry = {"error": f"{type(exc).__name__}: {exc}".strip()[:500]}
            print(f"  {name:<15}not timed: {entry['error']}", flush=True)
        results[name] = entry
        torch.cuda.synchronize()  # a sticky CUDA error surfaces here and ends the run
        torch.cuda.empty_cache()
    del batches, baseline
    torch.cuda.empty_cache()
    return result_record(config, seqlens, sets, results, baseline_name, run)


# ----------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help=f"the {len(QUICK)} DESIGN.md peer-table configs")
    which.add_argument("--configs", type=str, help="comma-separated keys like b128/s4096/h16/q1[/varlen]")
    parser.add_argument("--b", type=int, nargs="+", default=list(GRID_B), help="grid batch sizes")
    parser.add_argument("--s-k", type=int, nargs="+", default=list(GRID_S_K), help="grid KV lengths")
    parser.add_argument("--h-q", type=int, nargs="+", default=list(GRID_H_Q), help="grid query heads")
    parser.add_argument("--s-q", type=int, nargs="+", default=list(GRID_S_Q), help="grid query lengths")
    parser.add_argument("--varlen", nargs="?", const="both", choices=("off", "only", "both"), default=None,
                        help="add varlen twins (bare flag: both); default off for --quick/--configs, "
                             "both for the grid")
    parser.add_argument("--peers", type=str, default=".peers",
                        help="peer bundle: parts folder (.peers) or an extracted folder")
    parser.add_argument("--only", type=str, nargs="+", choices=PEER_NAMES, default=list(PEER_NAMES),
                        help="implementations to run")
    parser.add_argument("--reps", type=int, default=100, help=f"timed replays per implementation (>= {MIN_REPS})")
    parser.add_argument("--warmup", type=int, default=10, help="untimed replays before timing")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--card", type=str, default=None, help="results file name (default: from the GPU name)")
    parser.add_argument("--commit", type=str, default=None, help="commit to record (default: git rev-parse HEAD)")
    parser.add_argument("--merge", action="store_true",
                        help="keep configs of an existing results file that this run does not repeat")
    parser.add_argument("--list", action="store_true", help="print the configs and exit")
    parser.add_argument("--render", action="store_true",
                        help="rewrite <card>.md from <card>.json in --out-dir (needs --card) and exit")
    args = parser.parse_args(argv)
    if args.reps < MIN_REPS:
        parser.error(f"--reps must be >= {MIN_REPS}")
    return args


def selected_configs(args: argparse.Namespace) -> list[Config]:
    if args.quick:
        return apply_varlen(quick_configs(), args.varlen or "off")
    if args.configs:
        return apply_varlen(parse_configs(args.configs), args.varlen or "off")
    return apply_varlen(grid_configs(args.b, args.s_k, args.h_q, args.s_q), args.varlen or "both")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        json_path = args.out_dir / f"{args.card}.json"
        doc = json.loads(json_path.read_text())
        doc["peer_order"] = [n for n in PEER_NAMES if n in doc["peers"]]
        (args.out_dir / f"{args.card}.md").write_text(render_markdown(doc))
        return 0
    configs = selected_configs(args)
    if not configs:
        print("no configs selected", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(c.key for c in configs))
        return 0
    if not torch.cuda.is_available():
        print("bench_decode needs a CUDA GPU", file=sys.stderr)
        return 2
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))  # an installed mla_backend wins over the source tree
    device = torch.device("cuda", torch.cuda.current_device())
    env = environment(args.commit or git_commit(), args.card)
    l2_bytes = max(env["l2_bytes"], L2_BYTES_FLOOR)
    peers = load_peers(args.peers, tuple(args.only))
    order = [n for n in PEER_NAMES if n in peers]
    peers = {n: peers[n] for n in order}
    print(f"{env['device_name']}  torch {env['torch']}  CUDA {env['cuda']}  driver {env['driver']}  "
          f"commit {env['commit']}")
    for name, peer in peers.items():
        print(f"  {name:<15} {'ok' if peer.available else 'unavailable: ' + str(peer.error)}")
    doc = {
        "schema": 1, "env": env, "protocol": protocol_info(args.reps), "peer_order": order,
        "peers": {n: {"label": p.label, "available": p.available, "error": p.error} for n, p in peers.items()},
        "results": [],
    }
    run = {"commit": env["commit"], "date": env["date"]}
    for config in configs:
        doc["results"].append(run_config(config, peers, args.reps, args.warmup, l2_bytes, device, run))
        json_path, md_path = write_results(doc, args.out_dir, env["card"], merge=args.merge)
    print(f"\nwrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
