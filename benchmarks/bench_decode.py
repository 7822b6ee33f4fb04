"""Side-by-side MLA decode benchmark: ours and every available peer, same process, same card.

Protocol: one layer's decode as its engine runs it (kernel + combine; what the engine plans once per step for
all layers, ours and FA3's schedulers, FlashInfer's plan(), FlashMLA's schedule, is made before capture, see
peers.py), captured as one CUDA graph per implementation and input set; timed by CUDA events around each
replay; median of >= 50 replays per implementation, timed in 10 rounds interleaved across the implementations
(each round's first implementation rotates), so that the GPU's slower clock windows (~100 ms on the H200) hit
all alike; >= 4 input sets (separate q / k_cache / block_table allocations, randomly permuted pages) are
replayed in one rotation across all implementations' replays, with enough of them that their KV totals more
than 4x the L2, so KV never sits in L2.

Rules the harness enforces on itself, because each of them once produced plausible-looking garbage:
- Inputs are O(1): q and KV ~ randn in bf16, so a step that writes nothing (or zeros) cannot pass a check.
  Varlen twins draw seqlens from N(s_k, s_k/2) clipped to [0, 2·s_k], with empty requests among them.
- Every implementation, ours included, is checked against the fp32 reference (mla_backend.reference, run
  on the GPU in the same process) on a few requests of input set 0 by relative error, no NaN and lse; the
  graphed output is checked right after capture, after the timed replays (set 0's output must survive the
  other sets' replays) and once more replayed (its inputs must be intact). A failure means no time.
- Each graph is captured into its own memory pool and kept together with its step callable, whose
  `keepalive` holds every tensor the graph reads; a peer's graphs and outputs live from its capture to its
  checks after the timed replays (every peer's at once, since they are timed interleaved), then are released.
- The card's copy and matmul ceilings are measured at the start of the run (benchmarks/bench_ceilings.py);
  each time reports its % of the floor they imply, and one above a ceiling is marked invalid.
- By default the run happens in a child process under a supervisor (benchmarks/bench_supervisor.py): a
  peer that kills the CUDA context costs that (config, peer) only, recorded as crashed.

    GB/s   = (Σseqlen·576 + b·s_q·h_q·(576+512))·2 / t
    TFLOPS = 2·h_q·s_q·(576+512)·Σseqlen / t
    ratio vs the best peer = t_best_peer / t_ours (> 1: ours is faster)

fp8 KV cache (`--fp8-grid`, the configs of FP8_GRID, or `--kv fp8` with --configs, any query rows): the same
rules, on the cache quantized to float8_e4m3fn with one per-tensor scale (descale_k = amax / 448, what a
calibrated vLLM k_scale is; mla_backend.testing.make_batch). Every entry is checked against the fp32 reference
on the dequantized cache (descale_k · k_cache in fp32). Implementations (peers.FP8_PEER_NAMES): ours on the fp8
cache; ours bf16 on that cache's values rounded to bf16 (each e4m3 value is exact in bf16, its product with a
descale_k that is not a power of two is rounded by at most 2^-9 relative; the baseline of the fp8 speedup, not a
peer); vLLM's FlashMLA fp8 dense path (fp8 q too: checked at a looser tolerance, peers.FP8_Q_OUT_REL_TOL). The
cache counts 1 byte per value for the fp8 entries (2 for the bf16 baseline), so their bytes floor is about half:

    GB/s   = (Σseqlen·576·1 + b·s_q·h_q·(576+512)·2) / t
    vs ours bf16 = t_ours_bf16 / t_ours_fp8; vs FlashMLA-fp8 = t_flashmla_fp8 / t_ours_fp8 (targets: FP8_TARGETS)

Results go to <card>_fp8.json / .md, each record with "kv": "fp8".

Usage on the GPU box (peers from `python benchmarks/peers_bundle.py --out .peers`, carried as .peers):

    python benchmarks/bench_decode.py --issue-grid --peers .peers [--out-dir benchmarks/results]
    python benchmarks/bench_decode.py --fp8-grid --peers .peers     # fp8 KV cache: <card>_fp8.json / .md
    python benchmarks/bench_decode.py --quick --peers .peers [--varlen]
    python benchmarks/bench_decode.py --configs b128/s4096/h16/q1,b1/s32768/h128/q1/varlen --peers .peers
    python benchmarks/bench_decode.py --b 128 132 --h-q 128 --peers .peers --merge   # a slice of the grid

Results go to <out-dir>/<card>.json and <card>.md (benchmarks/bench_report.py), rewritten after every
config (a run cut short keeps what it finished); --merge keeps the configs and peers of an earlier run that
this run does not repeat, each entry with the check made in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))  # an installed mla_backend wins over the source tree

import bench_ceilings  # noqa: E402
import bench_supervisor  # noqa: E402
from provenance import git_commit  # noqa: E402
from bench_report import (  # noqa: E402
    SCHEMA, finish_doc, fp8_targets, refresh_record, render_markdown, summarize, write_results,
)
from peers import (  # noqa: E402
    ALL_PEER_NAMES, FP8_PEER_CLASSES, FP8_PEER_NAMES, FP8_Q_LSE_ABS_TOL, FP8_Q_OUT_REL_TOL, HEAD_DIM, HEAD_DIM_V,
    KV_DTYPES, PEER_NAMES, DecodeBatch, Peer, PeerUnavailable, load_peers,
)

from mla_backend.kernel_facts import BLOCK_SIZE as PAGE_SIZE  # noqa: E402
from mla_backend.reference import dequantize_kv  # noqa: E402
from mla_backend.testing import make_batch  # noqa: E402

GRID_B = (1, 8, 32, 64, 128, 132)
GRID_S_K = (1024, 4096, 8192, 16384, 32768)
GRID_H_Q = (16, 32, 64, 128)
GRID_S_Q = (1, 2, 4)
QUICK = (
    "b128/s4096/h16/q1", "b128/s4096/h128/q1", "b128/s4096/h128/q2", "b132/s8192/h128/q2",
    "b64/s16384/h16/q1", "b32/s1024/h16/q1", "b1/s32768/h128/q1", "b1/s32768/h16/q1", "b8/s8192/h16/q1",
)
# The configs of the H200 harness-bug report: the head-count sweep, the shapes that crashed, and varlen twins
# (with empty requests) of four of them, each twin right after its fixed-length config.
ISSUE_GRID = (
    "b128/s4096/h16/q1", "b128/s4096/h16/q1/varlen", "b128/s4096/h32/q1", "b128/s4096/h64/q1",
    "b128/s4096/h128/q1", "b128/s4096/h128/q2", "b128/s4096/h128/q2/varlen", "b132/s8192/h128/q2",
    "b64/s16384/h16/q1", "b64/s2048/h16/q2", "b32/s1024/h16/q1", "b32/s1024/h16/q1/varlen",
    "b8/s8192/h16/q1", "b8/s8192/h16/q1/varlen", "b4/s4096/h16/q1", "b1/s32768/h16/q1", "b1/s32768/h128/q1",
)
# The fp8 KV grid (issue 12): the memory-bound and small-batch configs of the bf16 grids that run on the fp8 swap-AB
# kernels (s_q·h_q <= kernel_facts.FP8_MAX_ROWS), plus h32 at b128.
FP8_GRID = (
    "b128/s4096/h16/q1", "b128/s4096/h32/q1", "b64/s16384/h16/q1", "b64/s2048/h16/q2", "b32/s1024/h16/q1",
    "b8/s8192/h16/q1", "b4/s4096/h16/q1", "b1/s32768/h16/q1",
)
# Issue 12's targets for the fp8 path, as t_peer / t_ours_fp8: >= 1.8x our bf16 time where the cache dominates
# the bytes, >= 1.2x FlashMLA-fp8 everywhere. A config not listed for a peer has no target against it.
FP8_TARGETS = {
    "mla_backend_bf16": {"b128/s4096/h16/q1": 1.8, "b64/s16384/h16/q1": 1.8},
    "flashmla_fp8": {key: 1.2 for key in FP8_GRID},
}

L2_BYTES_FLOOR = 50 * 1000 * 1000  # H100's 50 MB L2; the card's own size is used when larger
L2_MULTIPLE = 4  # KV of all input sets together > 4x L2
MIN_INPUT_SETS = 4
MIN_REPS = 50
TIMING_ROUNDS = 10  # each implementation's replays are timed in this many rounds, interleaved with the others'
ROUND_WARMUP = 2  # untimed replays before an implementation's slice of each round after the first
SOFTMAX_SCALE = 192 ** -0.5  # DeepSeek's qk_head_dim**-0.5, what vLLM passes (mscale 1)
HOST_LEAD_CYCLES_PER_REP = 200_000  # GPU spin (~0.1 ms per replay) while the host queues the timed replays
EMPTY_REQUESTS_PER = 64  # varlen: one request in 64 forced empty, at least one from b >= 4 on
CHECK_ROWS = 8  # non-empty requests compared with the reference (every empty one is added)
OUT_REL_TOL = 2e-2  # ‖out − ref‖ / ‖ref‖ for bf16 inputs and output
LSE_ABS_TOL = 5e-2  # natural log; Triton MLA returns its lse in bf16 (half an ulp at 8..16 is 0.03)


# ----------------------------------------------------------------------------------------------------
# Configs


@dataclass(frozen=True)
class Config:
    b: int
    s_k: int
    h_q: int
    s_q: int
    varlen: bool = False
    kv: str = "bf16"  # the cache's dtype: "bf16" or "fp8" (float8_e4m3fn + descale_k); not part of the key

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


def issue_grid_configs() -> list[Config]:
    return [Config.parse(key) for key in ISSUE_GRID]


def fp8_grid_configs() -> list[Config]:
    return [replace(Config.parse(key), kv="fp8") for key in FP8_GRID]


def apply_varlen(configs: list[Config], mode: str) -> list[Config]:
    """mode 'off': as given; 'only': the varlen twin of each; 'both': each followed by its varlen twin."""
    twins = {"off": (False,), "only": (True,), "both": (False, True)}[mode]
    out: list[Config] = []
    for config in configs:
        for varlen in twins:
            twin = replace(config, varlen=varlen or config.varlen)
            if twin not in out:
                out.append(twin)
    return out


def make_seqlens(config: Config) -> list[int]:
    """Fixed: s_k for every request. Varlen, seeded by the config: round(N(s_k, s_k/2)) clipped to
    [0, 2·s_k], then one request in EMPTY_REQUESTS_PER (at least one when b >= 4) set to 0; never all 0."""
    if not config.varlen:
        return [config.s_k] * config.b
    rng = random.Random(zlib.crc32(config.key.encode()))
    seqlens = [min(max(round(rng.gauss(config.s_k, config.s_k / 2)), 0), 2 * config.s_k) for _ in range(config.b)]
    if config.b >= 4:
        for row in rng.sample(range(config.b), max(1, config.b // EMPTY_REQUESTS_PER)):
            seqlens[row] = 0
    if not any(seqlens):
        seqlens[0] = config.s_k
    return seqlens


# ----------------------------------------------------------------------------------------------------
# Work, metrics, input-set count


def kv_bytes_per_value(kv: str) -> int:
    """Bytes per cached value: 2 for bf16, 1 for fp8."""
    return {"bf16": 2, "fp8": 1}[kv]


def decode_bytes(sum_seqlen: int, b: int, s_q: int, h_q: int, kv_bytes: int = 2) -> int:
    """Bytes of one decode step: KV read once (kv_bytes per value: 2 bf16, 1 fp8), q read and out written once
    (bf16)."""
    return sum_seqlen * HEAD_DIM * kv_bytes + b * s_q * h_q * (HEAD_DIM + HEAD_DIM_V) * 2


def decode_flops(sum_seqlen: int, s_q: int, h_q: int) -> int:
    """FLOPs of one decode step: Q·Kᵀ over 576 columns and P·V over 512, causal masking not subtracted."""
    return 2 * h_q * s_q * (HEAD_DIM + HEAD_DIM_V) * sum_seqlen


def kv_cache_bytes(seqlens: list[int], kv_bytes: int = 2) -> int:
    """Bytes of the pages one input set allocates (whole 64-token pages; kv_bytes per value, 2 bf16, 1 fp8)."""
    return sum(math.ceil(s / PAGE_SIZE) for s in seqlens) * PAGE_SIZE * HEAD_DIM * kv_bytes


def num_input_sets(kv_bytes: int, l2_bytes: int) -> int:
    """Enough input sets that their KV together exceeds L2_MULTIPLE x L2, and at least MIN_INPUT_SETS."""
    needed = L2_MULTIPLE * l2_bytes // max(kv_bytes, 1) + 1
    return max(MIN_INPUT_SETS, needed)


def metrics(time_us: float, nbytes: int, flops: int) -> dict:
    return {"us": round(time_us, 2), "gbps": round(bench_ceilings.gbps(nbytes, time_us), 1),
            "tflops": round(bench_ceilings.tflops(flops, time_us), 1)}


# ----------------------------------------------------------------------------------------------------
# The reference check (plain tensor code: runs on the GPU in the benchmark, on the CPU in the tests)


@dataclass
class Reference:
    """fp32 out [n, s_q, h_q, 512] and lse [n, h_q, s_q] of the requests `rows` of input set 0."""

    rows: list[int]
    out: torch.Tensor
    lse: torch.Tensor


def reference_rows(seqlens: list[int], limit: int = CHECK_ROWS) -> list[int]:
    """Requests to check: every empty one, plus `limit` non-empty ones (or all there are): the longest and
    the others spread over the batch, first and last included."""
    empty = [i for i, s in enumerate(seqlens) if s == 0]
    filled = [i for i, s in enumerate(seqlens) if s > 0]
    if not filled:
        return empty
    longest = max(filled, key=lambda i: seqlens[i])
    others = [i for i in filled if i != longest]
    count = min(limit - 1, len(others))
    spread = {others[round(k * (len(others) - 1) / max(count - 1, 1))] for k in range(count)}
    return sorted({*empty, longest, *spread})


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """‖got − want‖ / ‖want‖ in fp32 (the absolute norm when want is all zero); NaN in got gives NaN."""
    got, want = got.float(), want.float()
    diff = float(torch.linalg.vector_norm(got - want))
    scale = float(torch.linalg.vector_norm(want))
    return diff / scale if scale > 0 else diff


def _json_number(value: float) -> float | str:
    return float(f"{value:.3g}") if math.isfinite(value) else str(value)


def describe_nan(nan_requests: list[int], reference: Reference) -> str:
    empty = {row for row, lse in zip(reference.rows, reference.lse, strict=True) if not bool(torch.isfinite(lse).any())}
    where = "only in empty requests (seqlen 0)" if set(nan_requests) <= empty else "in requests"
    shown = ", ".join(str(r) for r in nan_requests[:8]) + (", ..." if len(nan_requests) > 8 else "")
    return f"NaN in out {where}: {shown}"


def check_against_reference(out: torch.Tensor, lse: torch.Tensor | None, reference: Reference,
                            lse_base2: bool = False, out_rel_tol: float | None = None,
                            lse_abs_tol: float | None = None) -> dict:
    """Compare a step's output (all requests) with the reference on its rows.

    Passes when: no NaN anywhere in out; ‖out − ref‖ / ‖ref‖ <= out_rel_tol (default OUT_REL_TOL) over the
    rows (empty requests' rows must be 0); and, if the step returns an lse, max |lse − ref| <= lse_abs_tol
    (default LSE_ABS_TOL) where ref is finite. A peer with its own tolerances (Peer.out_rel_tol, e.g. one that
    quantizes q to fp8) records them in the check.
    Rows that see no key have no lse to agree on: ours and FlashMLA's contract say +inf, FlashInfer writes
    another value; `lse_inf_where_empty` records which, without failing the check (what an engine reads is out).
    """
    out_rel_tol = OUT_REL_TOL if out_rel_tol is None else out_rel_tol
    lse_abs_tol = LSE_ABS_TOL if lse_abs_tol is None else lse_abs_tol
    index = torch.tensor(reference.rows, dtype=torch.long, device=out.device)
    problems = []
    nan_requests = torch.isnan(out).flatten(1).any(1).nonzero().flatten().tolist()
    nan_in_out = bool(nan_requests)
    if nan_in_out:
        problems.append(describe_nan(nan_requests, reference))
    rel = relative_error(out.index_select(0, index), reference.out.to(out.device))
    if not rel <= out_rel_tol:
        problems.append(f"out relative error {rel:.2e} > {out_rel_tol:g}")
    result = {"rows": len(reference.rows), "rel_err_out": _json_number(rel), "nan_in_out": nan_in_out,
              "max_abs_err_lse": None, "lse_inf_where_empty": None}
    if (out_rel_tol, lse_abs_tol) != (OUT_REL_TOL, LSE_ABS_TOL):
        result.update(out_rel_tol=out_rel_tol, lse_abs_tol=lse_abs_tol)
    if lse is not None:
        got = lse.index_select(0, index.to(lse.device)).float() * (math.log(2.0) if lse_base2 else 1.0)
        want = reference.lse.to(got.device)
        finite = torch.isfinite(want)
        if bool(finite.any()):
            err = float((got[finite] - want[finite]).abs().max())  # NaN propagates
            result["max_abs_err_lse"] = _json_number(err)
            if not err <= lse_abs_tol:
                problems.append(f"lse max |Δ| {err:.2e} > {lse_abs_tol:g}")
        if not bool(finite.all()):
            result["lse_inf_where_empty"] = bool((got[~finite] == math.inf).all())
    result["passed"] = not problems
    result["problems"] = problems
    return result


# ----------------------------------------------------------------------------------------------------
# Entries


def timed_entry(times: list[float], nbytes: int, flops: int, ceilings: dict, check: dict) -> dict:
    """A measured entry: metrics, its floor, its check, and whether it is physically possible."""
    time_us = statistics.median(times)
    floor = bench_ceilings.floor_us(nbytes, flops, ceilings)
    entry = {**metrics(time_us, nbytes, flops), "bytes": nbytes, "us_min": round(min(times), 2),
             "floor_us": round(floor, 2),
             "pct_of_floor": round(bench_ceilings.pct_of_floor(time_us, floor), 1),
             "rel_err": check["rel_err_out"], "check": check}
    violation = bench_ceilings.ceiling_violation(nbytes, flops, time_us, ceilings)
    entry["valid"] = violation is None
    if violation is not None:
        entry["invalid_reason"] = violation
    return entry


def check_failed_entry(stage: str, check: dict) -> dict:
    return {"error": f"check failed {stage}: {'; '.join(check['problems'])}", "rel_err": check["rel_err_out"],
            "check": check}


def error_entry(exc: BaseException) -> dict:
    return {"error": f"{type(exc).__name__}: {exc}".strip()[:500]}


def result_record(config: Config, seqlens: list[int], input_sets: int, check_rows: list[int], peers: dict,
                  run: dict) -> dict:
    """One config's entry: its work, each implementation's outcome, the best peer and our ratio to it."""
    sum_seqlen = sum(seqlens)
    record = {
        "key": config.key, **asdict(config), "sum_seqlen": sum_seqlen,
        "empty_requests": sum(1 for s in seqlens if s == 0),
        "bytes": decode_bytes(sum_seqlen, config.b, config.s_q, config.h_q, kv_bytes_per_value(config.kv)),
        "flops": decode_flops(sum_seqlen, config.s_q, config.h_q),
        "input_sets": input_sets, "check_rows": check_rows,
        "check_rows_empty": [row for row in check_rows if seqlens[row] == 0], "peers": peers, "run": run,
    }
    if config.kv == "fp8":
        record["targets"] = {name: by_key[config.key] for name, by_key in FP8_TARGETS.items() if config.key in by_key}
    return refresh_record(record)


def reps_per_round(reps: int) -> int:
    """Timed replays per implementation and round: the rounds together time at least `reps`."""
    return math.ceil(reps / TIMING_ROUNDS)


def protocol_info(reps: int, kv: str = "bf16") -> dict:
    info = {
        "step": "one layer: kernel + combine; per-step plans made before capture; one CUDA graph (own memory "
                "pool) per implementation and input set",
        "statistic": "median", "reps": TIMING_ROUNDS * reps_per_round(reps), "rounds": TIMING_ROUNDS,
        "timer": "CUDA events around each graph replay",
        "min_input_sets": MIN_INPUT_SETS, "l2_multiple": L2_MULTIPLE,
        "bytes": "(Σseqlen·576 + b·s_q·h_q·(576+512))·2", "flops": "2·h_q·s_q·(576+512)·Σseqlen",
        "softmax_scale": SOFTMAX_SCALE, "dtype": "bfloat16", "page_size": PAGE_SIZE, "causal": True,
        "inputs": "q, KV ~ randn (std 1), bf16; pages randomly permuted",
        "varlen": f"seqlens round(N(s_k, s_k/2)) clipped to [0, 2·s_k]; 1 in {EMPTY_REQUESTS_PER} "
                  "(at least 1 from b = 4 on) set to 0",
        "check_rows": CHECK_ROWS, "out_rel_tol": OUT_REL_TOL, "lse_abs_tol": LSE_ABS_TOL,
        "reference": "mla_backend.reference.mla_decode_reference, fp32, same process, input set 0",
    }
    if kv == "fp8":
        info.update(
            kv="fp8", dtype="bfloat16 q and out, float8_e4m3fn KV cache",
            bytes="(Σseqlen·576·c + b·s_q·h_q·(576+512)·2), c = 1 byte a cached value (2 for the bf16 baseline)",
            inputs="q, KV ~ randn (std 1); KV quantized to float8_e4m3fn with descale_k = amax / 448 (per tensor); "
                   "the bf16 baseline reads descale_k·k_cache in bf16; pages randomly permuted",
            reference="mla_backend.reference.mla_decode_reference, fp32, on the dequantized cache "
                      "(descale_k·k_cache), same process, input set 0",
            fp8_q_tolerance={"peers": [c.name for c in FP8_PEER_CLASSES if c.out_rel_tol is not None],
                             "out_rel_tol": FP8_Q_OUT_REL_TOL, "lse_abs_tol": FP8_Q_LSE_ABS_TOL,
                             "why": "the q quantization error, ~4% at these inputs: see peers.FP8_Q_OUT_REL_TOL"},
            targets=FP8_TARGETS)
    return info


# ----------------------------------------------------------------------------------------------------
# GPU side: inputs, reference, capture, timing


def driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def environment(commit: str, card: str | None) -> dict:
    from mla_backend.cli import bench
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    return {
        "card": card or bench.card_slug(props.name), "device_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}", "sm_count": props.multi_processor_count,
        "l2_bytes": getattr(props, "L2_cache_size", 0) or L2_BYTES_FLOOR, "memory_bytes": props.total_memory,
        "driver": driver_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "triton": triton_version, "python": platform.python_version(), "commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def make_input_set(config: Config, seqlens: list[int], seed: int, device: torch.device) -> DecodeBatch:
    """q and KV ~ randn (std 1) in bf16; each request's pages are a random slice of a permutation. The tests'
    generator, unpoisoned: the peers get a cache as an engine leaves it (finite, unused table entries 0).
    config.kv "fp8": the same keys quantized to float8_e4m3fn with descale_k = amax / 448 (k_cache_fp8,
    descale_k), and k_cache = descale_k·k_cache_fp8 rounded to bf16 (the bf16 baseline's cache)."""
    fp8 = config.kv == "fp8"
    x = make_batch(config.b, config.s_q, config.h_q, seqlens, causal=True, device=device, seed=seed, extra_blocks=0,
                   std=1.0, poison=False, kv_dtype=torch.float8_e4m3fn if fp8 else None)
    k_cache = x.k_cache.view(-1, PAGE_SIZE, HEAD_DIM)
    extra = {}
    if fp8:
        extra = {"k_cache_fp8": k_cache, "descale_k": x.descale_k}
        k_cache = dequantize_kv(k_cache, x.descale_k).to(x.q.dtype)
    return DecodeBatch(q=x.q, k_cache=k_cache, block_table=x.block_table, cache_seqlens=x.cache_seqlens,
                       softmax_scale=SOFTMAX_SCALE, causal=True, max_seqlen_k=max(seqlens), **extra)


def compute_reference(batch: DecodeBatch, rows: list[int]) -> Reference:
    """The fp32 reference of `rows` of the batch, on the batch's device (plain fp32, no TF32). With an fp8 cache,
    on the dequantized cache descale_k·k_cache_fp8 in fp32, the values every fp8 entry stands for."""
    from mla_backend.reference import mla_decode_reference

    k_cache = batch.k_cache if batch.k_cache_fp8 is None else dequantize_kv(batch.k_cache_fp8, batch.descale_k)
    index = torch.tensor(rows, dtype=torch.long, device=batch.q.device)
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out, lse = mla_decode_reference(
            batch.q.index_select(0, index), k_cache, batch.block_table.index_select(0, index),
            batch.cache_seqlens.index_select(0, index), HEAD_DIM_V, batch.softmax_scale, batch.causal)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    return Reference(rows=rows, out=out, lse=lse)


@dataclass
class CapturedStep:
    """A captured graph with what it needs: `step` (and its keepalive) holds every tensor the graph reads."""

    step: object
    graph: torch.cuda.CUDAGraph
    out: torch.Tensor
    lse: torch.Tensor | None


def prepare_steps(peer: Peer, batches: list[DecodeBatch]) -> list:
    steps = [peer.prepare(batch) for batch in batches]
    for step in steps:
        if not hasattr(step, "keepalive"):
            raise TypeError(f"{peer.name}'s step lists no keepalive: its graph could read freed memory")
    return steps


def capture_steps(peer: Peer, batches: list[DecodeBatch]) -> list[CapturedStep]:
    """One CUDA graph per input set, each in its own memory pool, so no set's buffers alias another's."""
    steps = prepare_steps(peer, batches)
    for step in steps:  # eager warm-up: JIT compiles, lazy module loads, workspace sizing
        step()
    torch.cuda.synchronize()
    captured = []
    for step in steps:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out, lse = step()
        captured.append(CapturedStep(step, graph, out, lse))
    return captured


def release(captured: list[CapturedStep]) -> None:
    """Drop graphs, outputs and steps now, so the next implementation starts from free memory.

    Best effort: after a peer broke the CUDA context this fails too, and the caller's context check, not
    this function's error, decides what happens next."""
    try:
        for item in captured:
            item.graph.reset()
    except RuntimeError:
        pass
    captured.clear()
    free_memory()


def free_memory() -> None:
    gc.collect()
    try:
        torch.cuda.empty_cache()
    except RuntimeError:
        pass


def time_replays(graphs: list, reps: int, warmup: int) -> list[float]:
    """Per-replay times in µs, replaying the graphs in rotation."""
    return bench_ceilings.time_calls_us([g.replay for g in graphs], reps, warmup, HOST_LEAD_CYCLES_PER_REP)


def check_outputs(item: CapturedStep, reference: Reference, lse_base2: bool, tols: dict | None = None) -> dict:
    """tols: {"out_rel_tol", "lse_abs_tol"} of a peer with its own tolerances (None: the defaults)."""
    torch.cuda.synchronize()
    return check_against_reference(item.out, item.lse, reference, lse_base2, **(tols or {}))


def replay_and_check(item: CapturedStep, reference: Reference, lse_base2: bool, tols: dict | None = None) -> dict:
    """Poison the outputs, replay, check: a step that leaves its output unwritten cannot pass."""
    item.out.fill_(math.nan)
    if item.lse is not None:
        item.lse.fill_(math.nan)
    item.graph.replay()
    return check_outputs(item, reference, lse_base2, tols)


def peer_tolerances(peer: Peer) -> dict:
    return {"out_rel_tol": getattr(peer, "out_rel_tol", None), "lse_abs_tol": getattr(peer, "lse_abs_tol", None)}


def rotated(items: list, start: int) -> list:
    """items from index `start` (mod their count) on, wrapping around."""
    start %= max(len(items), 1)
    return items[start:] + items[:start]


@dataclass
class TimedPeer:
    """A peer that passed its check after capture: its graphs, alive until its checks after timing (all peers'
    at once, since they are timed interleaved), that check, and its times so far."""

    peer: Peer
    captured: list[CapturedStep]
    after_capture: dict
    times: list[float] = field(default_factory=list)


def capture_and_check(peer: Peer, batches: list[DecodeBatch], reference: Reference) -> TimedPeer | dict:
    """Capture the peer's graphs and check set 0's output at once: the peer to time or, its graphs released, the
    entry of its failed check."""
    captured = capture_steps(peer, batches)
    try:
        check = replay_and_check(captured[0], reference, peer.lse_base2, peer_tolerances(peer))
    except BaseException:
        release(captured)
        raise
    if check["passed"]:
        return TimedPeer(peer, captured, check)
    release(captured)
    return check_failed_entry("right after capture", check)


def time_slice(item: TimedPeer, cursor: int, reps: int, warmup: int) -> None:
    """Add `reps` timed replays to the peer's times, continuing the one rotation over the input sets that all
    peers' replays share (`cursor`: the config's replays so far). The warm-up replays the sets before the first
    timed one, so every timed replay reads a set last read, by whichever peer, a whole rotation ago: not in L2."""
    item.times += time_replays(rotated([c.graph for c in item.captured], cursor + warmup), reps, warmup)


def checks_after_timing(item: TimedPeer, reference: Reference, nbytes: int, flops: int, ceilings: dict) -> dict:
    """The peer's entry: its times, if set 0's output survived the other sets' replays (no aliasing) and set 0
    replayed once more still passes (its inputs are intact)."""
    first, lse_base2, tols = item.captured[0], item.peer.lse_base2, peer_tolerances(item.peer)
    for other in item.captured[1:]:  # the other sets last: set 0's output must survive them
        other.graph.replay()
    survived = check_outputs(first, reference, lse_base2, tols)
    if not survived["passed"]:
        return check_failed_entry("after the timed replays (set 0's output was overwritten: aliasing)", survived)
    replayed = replay_and_check(first, reference, lse_base2, tols)
    if not replayed["passed"]:
        return check_failed_entry("replayed after the timed replays (set 0's inputs were overwritten)", replayed)
    check = {**item.after_capture, "rel_err_out_after_timing": max(
        (c["rel_err_out"] for c in (survived, replayed)), key=lambda v: float(v))}
    return timed_entry(item.times, nbytes, flops, ceilings, check)


class CudaContextLost(RuntimeError):
    """A peer left the CUDA context unusable (e.g. an illegal address): nothing more can run here."""


def cuda_context_alive() -> bool:
    try:
        torch.cuda.synchronize()
        return float(torch.ones(1, device="cuda").add_(1).item()) == 2.0
    except Exception:  # noqa: BLE001 - any failure here means the context is gone
        return False


def failure_entry(name: str, exc: Exception) -> dict:
    """A peer's exception as its entry (one peer's failure is a result, not the end of the run), unless the peer
    left the CUDA context unusable: then CudaContextLost."""
    if not isinstance(exc, PeerUnavailable) and torch.cuda.is_available() and not cuda_context_alive():
        raise CudaContextLost(f"{name}: {type(exc).__name__}: {exc}") from exc
    return error_entry(exc)


@contextlib.contextmanager
def attributed(progress: bench_supervisor.ProgressLog | None, key: str, name: str):
    """Mark a piece of `name`'s work on config `key` in the supervisor's progress log: a process that dies inside
    is blamed on this (config, peer). An asynchronous error that surfaces only at the closing synchronize still
    counts against it."""
    if progress is not None:
        progress.start(key, name)
    yield
    torch.cuda.synchronize()
    if progress is not None:
        progress.end(key, name)


def print_entry(name: str, entry: dict) -> None:
    if entry.get("crashed"):
        print(f"  {name:<16}skipped: it crashed the process on this config", flush=True)
        return
    if entry.get("us") is None:
        print(f"  {name:<16}not timed: {entry['error']}", flush=True)
        return
    flag = "" if entry["valid"] else f"  INVALID: {entry['invalid_reason']}"
    print(f"  {name:<16}{entry['us']:9.1f} µs {entry['gbps']:7.0f} GB/s {entry['tflops']:6.1f} TFLOPS "
          f"{entry['pct_of_floor']:5.1f}% of floor  rel err {entry['rel_err']}{flag}", flush=True)


def capture_all(key: str, peers: dict[str, Peer], batches: list[DecodeBatch], reference: Reference,
                entries: dict[str, dict], progress: bench_supervisor.ProgressLog | None) -> dict[str, TimedPeer]:
    """Capture and check each peer in turn: the ones that pass keep their graphs for the timing, the others get
    their entry in `entries` and give their memory back at once."""
    timed: dict[str, TimedPeer] = {}
    for name, peer in peers.items():
        with attributed(progress, key, name):
            try:
                outcome = capture_and_check(peer, batches, reference)
            except Exception as exc:  # noqa: BLE001 - one peer's failure is a result, not the end of the run
                outcome = failure_entry(name, exc)
            if isinstance(outcome, TimedPeer):
                timed[name] = outcome
            else:
                entries[name] = outcome
                free_memory()  # what a failed capture left behind, too
    return timed


def time_in_rounds(key: str, timed: dict[str, TimedPeer], reps: int, warmup: int, entries: dict[str, dict],
                   progress: bench_supervisor.ProgressLog | None) -> None:
    """Time the peers in TIMING_ROUNDS rounds of reps_per_round(reps) replays each, round r starting at peer r
    (mod their count): the GPU's slower clock windows (~100 ms on the H200) then fall on every peer alike, not on
    whichever one was being timed (b132/s8192/h128/q2's medians moved ~10% per peer between runs timed one peer
    after another). A peer that raises gets its entry in `entries` and leaves `timed`, its graphs released."""
    order, per_round, cursor = list(timed), reps_per_round(reps), 0
    for round_index in range(TIMING_ROUNDS):
        for name in rotated(order, round_index):
            if name not in timed:
                continue
            slice_warmup = warmup if round_index == 0 else ROUND_WARMUP
            with attributed(progress, key, name):
                try:
                    time_slice(timed[name], cursor, per_round, slice_warmup)
                except Exception as exc:  # noqa: BLE001 - one peer's failure is a result, not the end of the run
                    entries[name] = failure_entry(name, exc)
                    release(timed.pop(name).captured)
            cursor += slice_warmup + per_round


def finish_all(key: str, timed: dict[str, TimedPeer], reference: Reference, nbytes_of: Callable[[Peer], int],
               flops: int, ceilings: dict, entries: dict[str, dict],
               progress: bench_supervisor.ProgressLog | None) -> None:
    """Each timed peer's checks after timing give its entry in `entries`; its graphs are released right after."""
    for name, item in timed.items():
        with attributed(progress, key, name):
            try:
                entries[name] = checks_after_timing(item, reference, nbytes_of(item.peer), flops, ceilings)
            except Exception as exc:  # noqa: BLE001 - one peer's failure is a result, not the end of the run
                entries[name] = failure_entry(name, exc)
            finally:
                release(item.captured)


def config_inputs(config: Config, l2_bytes: int, device: torch.device
                  ) -> tuple[list[int], list[DecodeBatch], Reference]:
    """A config's seqlens, its input sets (enough that their KV passes L2_MULTIPLE x L2; seeded by the config)
    and the fp32 reference on input set 0's checked requests."""
    seqlens = make_seqlens(config)
    seed = zlib.crc32(config.key.encode())
    sets = num_input_sets(kv_cache_bytes(seqlens, kv_bytes_per_value(config.kv)), l2_bytes)  # the cache timed
    batches = [make_input_set(config, seqlens, seed + i, device) for i in range(sets)]
    return seqlens, batches, compute_reference(batches[0], reference_rows(seqlens))


def run_config(config: Config, peers: dict[str, Peer], reps: int, warmup: int, l2_bytes: int,
               device: torch.device, ceilings: dict, run: dict, crashed: dict[str, str] | None = None,
               progress: bench_supervisor.ProgressLog | None = None) -> dict:
    """Measure every available implementation on one config; `crashed` peers are recorded, not run. Each one is
    captured and checked, then all that passed are timed interleaved (time_in_rounds), then each is checked
    again and released; the entries are printed at the end, in peer order."""
    crashed = crashed or {}
    seqlens, batches, reference = config_inputs(config, l2_bytes, device)
    sets, rows = len(batches), reference.rows
    sum_seqlen = sum(seqlens)
    flops = decode_flops(sum_seqlen, config.s_q, config.h_q)
    kv_bytes = kv_bytes_per_value(config.kv)
    print(f"\n{config.key}{' fp8 KV' if config.kv == 'fp8' else ''}: Σseqlen {sum_seqlen}, {seqlens.count(0)} "
          f"empty requests, {sets} input sets of {kv_cache_bytes(seqlens, kv_bytes) / 2**20:.0f} MiB KV", flush=True)
    names = [name for name, peer in peers.items() if peer.available]  # the others: in the document's peer list
    entries = {name: {"error": crashed[name], "crashed": True} for name in names if name in crashed}
    timed = capture_all(config.key, {n: peers[n] for n in names if n not in crashed}, batches, reference, entries,
                        progress)
    time_in_rounds(config.key, timed, reps, warmup, entries, progress)

    def nbytes_of(peer: Peer) -> int:   # the cache it reads: 1 byte a value for the fp8 peers, 2 for the bf16 ones
        return decode_bytes(sum_seqlen, config.b, config.s_q, config.h_q, getattr(peer, "kv_bytes", 2))

    finish_all(config.key, timed, reference, nbytes_of, flops, ceilings, entries, progress)
    entries = {name: entries[name] for name in names}
    for name, entry in entries.items():
        print_entry(name, entry)
    del batches, reference, timed
    free_memory()
    return result_record(config, seqlens, sets, rows, entries, run)


# ----------------------------------------------------------------------------------------------------
# A run: ceilings, peers, configs, results after every config


def new_doc(env: dict, ceilings: dict, reps: int, peers: dict[str, Peer], run_id: str, kv: str = "bf16") -> dict:
    return {
        "schema": SCHEMA, "run_id": run_id, "kv": kv, "env": env, "ceilings": ceilings,
        "protocol": protocol_info(reps, kv), "peer_order": list(peers),
        "peers": {n: {"label": p.label, "available": p.available, "error": p.error} for n, p in peers.items()},
        "results": [],
    }


def results_stem(card: str, kv: str = "bf16") -> str:
    """The results files' name: <card> for the bf16 cache, <card>_fp8 for the fp8 one (its own file: the same
    config keys, other implementations)."""
    return card if kv == "bf16" else f"{card}_{kv}"


def resumed_doc(json_path: Path, run_id: str) -> dict | None:
    """The results file a crashed child of this same run wrote, to continue from."""
    if not json_path.exists():
        return None
    doc = json.loads(json_path.read_text())
    return doc if doc.get("run_id") == run_id else None


def upsert(doc: dict, record: dict) -> None:
    for i, existing in enumerate(doc["results"]):
        if existing["key"] == record["key"]:
            doc["results"][i] = record
            return
    doc["results"].append(record)


def start_run(args: argparse.Namespace) -> tuple[dict, dict, dict[str, Peer]]:
    """(env, ceilings, peers) of this process: the card, its measured ceilings, the loaded implementations."""
    env = environment(args.commit or git_commit(), args.card)
    print(f"{env['device_name']}  torch {env['torch']}  CUDA {env['cuda']}  driver {env['driver']}  "
          f"commit {env['commit']}", flush=True)
    ceilings = bench_ceilings.measure_ceilings(torch.device("cuda", torch.cuda.current_device()))
    print(f"ceilings: copy {ceilings['copy_gbps']:.0f} GB/s, matmul {ceilings['matmul_tflops']:.0f} TFLOPS",
          flush=True)
    names = FP8_PEER_NAMES if args.kv == "fp8" else PEER_NAMES
    loaded = load_peers(args.peers, tuple(n for n in names if n in (args.only or names)), kv=args.kv)
    peers = {n: loaded[n] for n in names if n in loaded}
    for name, peer in peers.items():
        print(f"  {name:<16} {'ok' if peer.available else 'unavailable: ' + str(peer.error)}")
    return env, ceilings, peers


def run_benchmark(args: argparse.Namespace, configs: list[Config]) -> int:
    """Measure `configs`, writing the results after each. Under the supervisor (--worker-state) this continues
    the run's results file and skips the pairs that crashed an earlier child."""
    state = bench_supervisor.WorkerState.load(args.worker_state) if args.worker_state else None
    run_id = state.run_id if state else bench_supervisor.new_run_id()
    crashed = state.crashed_pairs() if state else {}
    progress = bench_supervisor.ProgressLog(state.progress) if state else None
    env, ceilings, peers = start_run(args)
    device = torch.device("cuda", torch.cuda.current_device())
    l2_bytes = max(env["l2_bytes"], L2_BYTES_FLOOR)
    stem = results_stem(env["card"], args.kv)
    doc = resumed_doc(args.out_dir / f"{stem}.json", run_id) or new_doc(env, ceilings, args.reps, peers, run_id,
                                                                       args.kv)
    doc.update(env=env, ceilings=ceilings)
    run = {"id": run_id, "commit": env["commit"], "date": env["date"], "ceilings": ceilings}
    done = {r["key"] for r in doc["results"] if r.get("run", {}).get("id") == run_id}
    for config in configs:
        if config.key in done:
            print(f"\n{config.key}: done earlier in this run", flush=True)
            continue
        try:
            record = run_config(config, peers, args.reps, args.warmup, l2_bytes, device, ceilings, run,
                                crashed.get(config.key), progress)
        except CudaContextLost as lost:
            print(f"\nCUDA context lost: {lost}", file=sys.stderr, flush=True)
            if state is not None:
                sys.stdout.flush()
                os._exit(bench_supervisor.EXIT_CONTEXT_LOST)  # no CUDA teardown: the supervisor takes over
            print("run without --in-process to have the supervisor skip it and go on", file=sys.stderr)
            return bench_supervisor.EXIT_CONTEXT_LOST
        upsert(doc, record)
        write_results(doc, args.out_dir, stem, merge=args.merge)
    json_path, md_path = write_results(doc, args.out_dir, stem, merge=args.merge)
    summary = summarize(doc["results"])
    print(f"\nours vs the best peer, geomean over {summary['configs_with_ratio']} configs: "
          f"{summary['geomean_ratio_vs_best_peer']}")
    if args.kv == "fp8":
        print("\n".join(target_lines(doc["results"])))
    print(f"wrote {json_path} and {md_path}")
    return 0


def target_lines(results: list[dict]) -> list[str]:
    """The fp8 targets (FP8_TARGETS) per config: met, missed, or not measured."""
    lines, met, total = [], 0, 0
    for record in results:
        for check in fp8_targets(record):
            total += 1
            met += check["met"] is True
            state = {True: "met", False: "MISSED", None: "not measured"}[check["met"]]
            ratio = "—" if check["ratio"] is None else f"{check['ratio']:.2f}x"
            lines.append(f"  {record['key']:<20} vs {check['peer']:<17} {ratio:>7} (target >= {check['target']}x) "
                         f"{state}")
    return [f"fp8 targets met: {met} of {total}", *lines]



# ----------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help=f"a {len(QUICK)}-config subset of the grid (fast)")
    which.add_argument("--issue-grid", action="store_true",
                       help=f"the {len(ISSUE_GRID)} configs of the H200 harness report, varlen twins included")
    which.add_argument("--fp8-grid", action="store_true",
                       help=f"the {len(FP8_GRID)} configs of the fp8 KV cache (implies --kv fp8)")
    which.add_argument("--configs", type=str, help="comma-separated keys like b128/s4096/h16/q1[/varlen]")
    parser.add_argument("--b", type=int, nargs="+", default=list(GRID_B), help="grid batch sizes")
    parser.add_argument("--s-k", type=int, nargs="+", default=list(GRID_S_K), help="grid KV lengths")
    parser.add_argument("--h-q", type=int, nargs="+", default=list(GRID_H_Q), help="grid query heads")
    parser.add_argument("--s-q", type=int, nargs="+", default=list(GRID_S_Q), help="grid query lengths")
    parser.add_argument("--varlen", nargs="?", const="both", choices=("off", "only", "both"), default=None,
                        help="add varlen twins (bare flag: both); default off for --quick/--issue-grid/--configs, "
                             "both for the grid")
    parser.add_argument("--peers", type=str, default=".peers",
                        help="peer bundle: parts folder (.peers) or an extracted folder")
    parser.add_argument("--kv", choices=KV_DTYPES, default=None,
                        help="the KV cache: bf16 (default) or fp8 (float8_e4m3fn + descale_k; without a config "
                             "selection: the fp8 grid); results in <card>_fp8.*")
    parser.add_argument("--only", type=str, nargs="+", choices=ALL_PEER_NAMES, default=None,
                        help=f"implementations to run (default all: {', '.join(PEER_NAMES)}; with --kv fp8: "
                             f"{', '.join(FP8_PEER_NAMES)})")
    parser.add_argument("--reps", type=int, default=100,
                        help=f"timed replays per implementation (>= {MIN_REPS}; rounded up to a multiple of the "
                             f"{TIMING_ROUNDS} timing rounds)")
    parser.add_argument("--warmup", type=int, default=10,
                        help=f"untimed replays before an implementation's first round ({ROUND_WARMUP} before "
                             "its others)")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--card", type=str, default=None, help="results file name (default: from the GPU name)")
    parser.add_argument("--commit", type=str, default=None, help="commit to record (default: git rev-parse HEAD)")
    parser.add_argument("--merge", action="store_true",
                        help="keep configs and peers of an existing results file that this run does not repeat")
    parser.add_argument("--in-process", action="store_true",
                        help="no supervisor child process: a peer that kills the CUDA context ends the run")
    parser.add_argument(bench_supervisor.WORKER_FLAG, dest="worker_state", type=Path, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="print the configs and exit")
    parser.add_argument("--render", action="store_true",
                        help="rewrite <card>.md from <card>.json in --out-dir (needs --card; with --kv fp8: "
                             "<card>_fp8) and exit")
    args = parser.parse_args(argv)
    if args.fp8_grid and args.kv == "bf16":
        parser.error("--fp8-grid runs the fp8 KV cache; drop --kv bf16")
    args.kv = "fp8" if args.fp8_grid else (args.kv or "bf16")
    fp8_only = [n for n in args.only or () if n not in (FP8_PEER_NAMES if args.kv == "fp8" else PEER_NAMES)]
    if fp8_only:
        parser.error(f"--only {' '.join(fp8_only)}: not an implementation of the {args.kv} cache (those are "
                     f"{', '.join(FP8_PEER_NAMES if args.kv == 'fp8' else PEER_NAMES)})")
    if args.reps < MIN_REPS:
        parser.error(f"--reps must be >= {MIN_REPS}")
    if args.render and not args.card:
        parser.error("--render needs --card")
    return args


def selected_configs(args: argparse.Namespace) -> list[Config]:
    kv = getattr(args, "kv", None) or "bf16"
    if args.quick:
        configs = apply_varlen(quick_configs(), args.varlen or "off")
    elif args.issue_grid:
        configs = apply_varlen(issue_grid_configs(), args.varlen or "off")
    elif args.configs:
        configs = apply_varlen(parse_configs(args.configs), args.varlen or "off")
    elif getattr(args, "fp8_grid", False) or kv == "fp8":  # the full grid is mostly beyond the fp8 path
        configs = apply_varlen(fp8_grid_configs(), args.varlen or "off")
    else:
        configs = apply_varlen(grid_configs(args.b, args.s_k, args.h_q, args.s_q), args.varlen or "both")
    return [replace(config, kv=kv) for config in configs]


def render_existing(out_dir: Path, card: str) -> int:
    """Rewrite <card>.md from <card>.json (card: the file stem, e.g. h200 or h200_fp8)."""
    doc = json.loads((out_dir / f"{card}.json").read_text())
    if doc.get("schema", 1) < SCHEMA:
        print(f"{card}.json is schema {doc.get('schema', 1)}: written before every entry carried a reference "
              "check; rerun the benchmark instead", file=sys.stderr)
        return 2
    (out_dir / f"{card}.md").write_text(render_markdown(finish_doc(doc)))
    return 0


def supervised_command(argv: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *argv]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.render:
        return render_existing(args.out_dir, results_stem(args.card, args.kv))
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
    if args.in_process or args.worker_state is not None:
        return run_benchmark(args, configs)
    return bench_supervisor.supervise(supervised_command(argv), args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
