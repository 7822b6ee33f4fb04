"""The results document of benchmarks/bench_decode.py: per-config records, the best peer, merging, markdown.

Pure Python, no GPU: the CPU tests and `mla-backend bench --plot` read the same structures.

A record holds one config's work and one entry per implementation. An entry is one of:
- timed: `us`, `us_min`, `gbps`, `tflops`, `floor_us`, `pct_of_floor`, `rel_err`, `check` (passed) and
  `valid`; `valid` is False, with `invalid_reason`, when a figure is above a measured ceiling;
- not timed: `error`, plus `check` and `rel_err` when the reference check failed, `crashed` when the
  peer took its process down.
Only valid timed entries count: for the best peer, the ratios and the plot. Every timed entry carries the
check made in its own process; merging drops any that does not (results of schema 1 had none).

An fp8 KV cache run (`"kv": "fp8"` on the document and each record; its own <card>_fp8 files) has ours on the fp8
cache as `mla_backend`, our bf16 path as the baseline `mla_backend_bf16` (a ratio, never the best peer) and
FlashMLA's fp8 path; each record's `targets` holds issue 12's ratios to reach (t_peer / t_ours >= target).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from peers import ALL_PEER_NAMES, BASELINE_NAMES

from mla_backend.cli.bench import OURS, missing_label

SCHEMA = 2


# ----------------------------------------------------------------------------------------------------
# Entries and the best peer


def is_counted(entry: dict | None) -> bool:
    """A time that counts: measured, checked against the reference in the same process, under the ceilings."""
    return (entry is not None and entry.get("us") is not None and entry.get("valid") is True
            and (entry.get("check") or {}).get("passed") is True)


def entry_status(entry: dict | None) -> str:
    """One word for a table cell that has no time."""
    if is_counted(entry):
        return "ok"
    label = missing_label(entry)
    return "check failed" if label == "failed" and (entry.get("check") or {}).get("passed") is False else label


def best_peer(peers: dict) -> tuple[str, float] | None:
    """(name, µs) of the fastest peer other than ours (and our own baselines, BASELINE_NAMES) whose entry counts."""
    timed = [(entry["us"], name) for name, entry in peers.items()
             if name != OURS and name not in BASELINE_NAMES and is_counted(entry)]
    if not timed:
        return None
    us, name = min(timed)
    return name, us


def ratio_vs_best_peer(peers: dict) -> float | None:
    """t_best_peer / t_ours (> 1: ours is faster); None unless both count."""
    best = best_peer(peers)
    ours = peers.get(OURS)
    if best is None or not is_counted(ours):
        return None
    return best[1] / ours["us"]


def speedups(peers: dict) -> dict:
    """t_peer / t_ours for every peer whose entry counts, when ours counts."""
    ours = peers.get(OURS)
    if not is_counted(ours):
        return {}
    return {name: round(entry["us"] / ours["us"], 3) for name, entry in peers.items()
            if name != OURS and is_counted(entry)}


def refresh_record(record: dict) -> dict:
    """Recompute what a record derives from its entries (after a run or a merge)."""
    best = best_peer(record["peers"])
    ratio = ratio_vs_best_peer(record["peers"])
    record["best_peer"] = None if best is None else {"name": best[0], "us": best[1]}
    record["ratio_vs_best_peer"] = None if ratio is None else round(ratio, 3)
    record["speedup_vs"] = speedups(record["peers"])
    return record


def fp8_targets(record: dict) -> list[dict]:
    """Each target of the record (fp8 runs: {peer: ratio to reach}) with the ratio t_peer / t_ours measured and
    whether it is met (None: ours or that peer has no time that counts)."""
    checks = []
    for name, target in (record.get("targets") or {}).items():
        ratio = (record.get("speedup_vs") or {}).get(name)
        checks.append({"peer": name, "target": target, "ratio": ratio,
                       "met": None if ratio is None else ratio >= target})
    return checks


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summarize(results: list[dict]) -> dict:
    ratios = [r["ratio_vs_best_peer"] for r in results if r.get("ratio_vs_best_peer") is not None]
    mean = geomean(ratios)
    summary = {"geomean_ratio_vs_best_peer": None if mean is None else round(mean, 3),
               "configs_with_ratio": len(ratios), "configs": len(results)}
    targets = [check for r in results for check in fp8_targets(r)]
    if targets:
        summary["targets_met"] = sum(check["met"] is True for check in targets)
        summary["targets"] = len(targets)
        by_peer: dict[str, list[float]] = {}
        for record in results:
            for name, ratio in (record.get("speedup_vs") or {}).items():
                by_peer.setdefault(name, []).append(ratio)
        summary["geomean_speedup_vs"] = {name: round(geomean(values), 3) for name, values in by_peer.items()}
    return summary


# ----------------------------------------------------------------------------------------------------
# Merging runs


def drop_unchecked(peers: dict) -> dict:
    """Entries that may stand in a merged record: a time only together with its own process's check."""
    return {name: entry for name, entry in peers.items()
            if entry.get("us") is None or "check" in entry}


def merge_results(old: dict | None, new: dict) -> dict:
    """old's records updated by new's: a config measured again keeps the peers that new did not run (so peers
    can be run in separate processes, one crash costing one run). Each entry keeps its own check; timed
    entries without one (older files) are dropped."""
    if not old:
        return finish_doc(new)
    old_records = {r["key"]: r for r in old.get("results", [])}
    merged = []
    for record in new["results"]:
        previous = old_records.pop(record["key"], None)
        if previous is not None:
            record = {**record, "peers": {**drop_unchecked(previous["peers"]), **record["peers"]}}
        merged.append(record)
    kept = [{**r, "peers": drop_unchecked(r["peers"])} for r in old_records.values()]
    order = list(dict.fromkeys([*old.get("peer_order", []), *new.get("peer_order", [])]))
    doc = {**new, "peers": {**old.get("peers", {}), **new.get("peers", {})},
           "peer_order": sorted(order, key=peer_rank), "results": kept + merged}
    return finish_doc(doc)


def peer_rank(name: str) -> int:
    return ALL_PEER_NAMES.index(name) if name in ALL_PEER_NAMES else len(ALL_PEER_NAMES)


def finish_doc(doc: dict) -> dict:
    for record in doc["results"]:
        refresh_record(record)
    doc["summary"] = summarize(doc["results"])
    return doc


def write_results(doc: dict, out_dir: Path, card: str, merge: bool = False) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{card}.json", out_dir / f"{card}.md"
    if merge and json_path.exists():
        doc = merge_results(json.loads(json_path.read_text()), doc)
    else:
        doc = finish_doc(doc)
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    md_path.write_text(render_markdown(doc))
    return json_path, md_path


# ----------------------------------------------------------------------------------------------------
# Markdown


def _err(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else f"{value:.1e}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _timing_cell(entry: dict | None) -> str:
    if is_counted(entry):
        return f"{entry['us']:.1f} ({entry['gbps']:.0f}, {entry['tflops']:.0f}, {entry['pct_of_floor']:.0f}%)"
    if entry is not None and entry.get("us") is not None:
        return f"invalid ({entry['us']:.1f})"
    return entry_status(entry)


def _check_cell(entry: dict | None) -> str:
    check = (entry or {}).get("check")
    if not check:
        return entry_status(entry) if entry is not None and entry.get("error") else "—"
    text = _err(check.get("rel_err_out"))
    if check.get("max_abs_err_lse") is not None:
        text += f", lse {_err(check['max_abs_err_lse'])}"
    if check.get("lse_inf_where_empty") is False:
        text += " (empty rows' lse not +inf)"
    return text if check.get("passed") else f"FAIL {text}"


def _names(doc: dict) -> list[str]:
    present = {name for record in doc["results"] for name in record["peers"]}
    return sorted(present, key=peer_rank)


def _timing(protocol: dict) -> str:
    """How the replays were timed; results written before the implementations were interleaved have no rounds."""
    if "rounds" not in protocol:
        return f"median of {protocol['reps']} replays timed by CUDA events"
    return (f"median of {protocol['reps']} replays per implementation timed by CUDA events, in {protocol['rounds']} "
            "rounds interleaved across the implementations (each round's first implementation rotates) so that "
            "clock changes hit all alike")


def _header_lines(doc: dict) -> list[str]:
    env, protocol, ceilings = doc["env"], doc["protocol"], doc.get("ceilings") or {}
    lines = [
        f"# MLA decode benchmark: {env['card']}" + (", fp8 KV cache" if doc.get("kv") == "fp8" else ""),
        "",
        f"{env['device_name']} ({env['sm_count']} SMs, L2 {env['l2_bytes'] / 2**20:.0f} MiB), driver "
        f"{env['driver']}, torch {env['torch']}, CUDA {env['cuda']}, triton {env['triton']}, "
        f"Python {env['python']}; commit {env['commit']}; {env['date']}.",
        "",
    ]
    if ceilings:
        lines += [
            f"Ceilings measured at the start of the run: copy {ceilings['copy_gbps']:.0f} GB/s "
            f"({ceilings['copy']}), matmul {ceilings['matmul_tflops']:.0f} TFLOPS ({ceilings['matmul']}); "
            f"{ceilings['statistic']}. Floor of a config = max(bytes / copy rate, FLOPs / matmul rate); "
            f"% of floor = floor / time. A time above {ceilings['slack']}x a ceiling is invalid (a harness "
            "bug) and does not count.",
            "",
        ]
    inputs = "q and KV ~ randn (bf16)" if doc.get("kv", "bf16") == "bf16" else protocol["inputs"]
    lines += [
        f"One decode step (metadata + kernel + combine) per CUDA graph, each graph with its own memory pool "
        f"and holding every tensor it reads; {_timing(protocol)}; "
        f"{protocol['min_input_sets']}+ input sets in rotation with KV > {protocol['l2_multiple']}x L2; "
        f"{inputs}, page 64, causal. GB/s = {protocol['bytes']} / t; "
        f"TFLOPS = {protocol['flops']} / t.",
        "",
        f"Every implementation, ours included, is checked in its own process against the fp32 reference "
        f"(`mla_backend.reference`) on up to {protocol['check_rows']} requests of input set 0, every empty "
        f"request among them: ‖out − ref‖ / ‖ref‖ ≤ {protocol['out_rel_tol']}, no NaN, and where an lse is "
        f"returned max |Δlse| ≤ {protocol['lse_abs_tol']} over requests with keys (empty requests have no lse "
        "to agree on: a value other than our +inf is noted, not failed). "
        "The graphed output is checked right after capture, after the timed replays (it must survive the "
        "other input sets' replays) and replayed once more. An implementation that fails is not timed. "
        "Written by benchmarks/bench_decode.py; do not edit by hand.",
        "",
    ]
    tolerance = protocol.get("fp8_q_tolerance")
    if tolerance:
        names = ", ".join(f"`{name}`" for name in tolerance["peers"])
        lines += [f"fp8 KV cache: the reference is computed on the dequantized cache. {names}: q quantized to e4m3 "
                  f"as well, held to ‖out − ref‖ / ‖ref‖ ≤ {tolerance['out_rel_tol']} and max |Δlse| ≤ "
                  f"{tolerance['lse_abs_tol']} ({tolerance['why']}).", ""]
    lines.append("Implementations:")
    for name in doc["peer_order"]:
        info = doc["peers"].get(name, {})
        state = "available" if info.get("available") else f"unavailable: {info.get('error')}"
        lines.append(f"- `{name}`: {info.get('label', name)}: {state}")
    return lines


def _main_table(doc: dict) -> list[str]:
    header = ["config", "Σseqlen", "ours µs", "best peer", "best peer µs", "ratio", "ours GB/s",
              "ours TFLOPS", "ours % of floor"]
    rows = []
    for record in doc["results"]:
        ours = record["peers"].get(OURS)
        best = record.get("best_peer")
        ratio = record.get("ratio_vs_best_peer")
        counted = is_counted(ours)
        rows.append([
            record["key"], str(record["sum_seqlen"]),
            f"{ours['us']:.1f}" if counted else entry_status(ours),
            f"`{best['name']}`" if best else "—", f"{best['us']:.1f}" if best else "—",
            f"{ratio:.2f}x" if ratio is not None else "—",
            f"{ours['gbps']:.0f}" if counted else "—", f"{ours['tflops']:.0f}" if counted else "—",
            f"{ours['pct_of_floor']:.0f}%" if counted else "—",
        ])
    summary = doc.get("summary") or summarize(doc["results"])
    mean = summary.get("geomean_ratio_vs_best_peer")
    closing = (f"Geomean of the ratio over {summary['configs_with_ratio']} configs: **{mean:.2f}x**."
               if mean is not None else "No config has both ours and a peer timed.")
    return ["", "## Ours vs the best peer (ratio = t_best_peer / t_ours; > 1: ours is faster)", "",
            *_table(header, rows), "", closing]


def _peer_table(doc: dict, names: list[str]) -> list[str]:
    header = ["config"] + [f"`{n}`" for n in names]
    rows = [[r["key"]] + [_timing_cell(r["peers"].get(n)) for n in names] for r in doc["results"]]
    return ["", "## Every implementation: µs (GB/s, TFLOPS, % of floor)", "", *_table(header, rows)]


def _check_table(doc: dict, names: list[str]) -> list[str]:
    header = ["config", "requests checked (empty)"] + [f"`{n}`" for n in names]
    rows = []
    for record in doc["results"]:
        checked = record.get("check_rows", [])
        empty = record.get("check_rows_empty", [])
        rows.append([record["key"], f"{len(checked)} ({len(empty)})"]
                    + [_check_cell(record["peers"].get(n)) for n in names])
    return ["", "## Check against the fp32 reference: out relative error, lse max |Δ|", "", *_table(header, rows)]


def _not_timed(doc: dict) -> list[str]:
    items = []
    for record in doc["results"]:
        for name, entry in record["peers"].items():
            if entry.get("error"):  # on one line: a crash's stderr tail has many (the JSON keeps them)
                items.append(f"- {record['key']} `{name}`: {' '.join(entry['error'].split())}")
            elif entry.get("us") is not None and not is_counted(entry):
                items.append(f"- {record['key']} `{name}`: {entry.get('invalid_reason', 'not valid')}")
    return ["", "## Not timed or not counted", "", *items] if items else []


def _fp8_table(doc: dict) -> list[str]:
    """fp8 runs: ours on the fp8 cache against our bf16 path and FlashMLA's fp8 path, with the targets."""
    if not any(record.get("targets") for record in doc["results"]):
        return []
    names = ["mla_backend_bf16", "flashmla_fp8"]
    header = ["config", "ours fp8 µs", "GB/s", "TFLOPS", "% of floor"]
    for name in names:
        header += [f"`{name}` µs", f"vs `{name}` (target)"]
    rows = []
    for record in doc["results"]:
        ours = record["peers"].get(OURS)
        counted = is_counted(ours)
        row = [record["key"], f"{ours['us']:.1f}" if counted else entry_status(ours),
               f"{ours['gbps']:.0f}" if counted else "—", f"{ours['tflops']:.0f}" if counted else "—",
               f"{ours['pct_of_floor']:.0f}%" if counted else "—"]
        checks = {check["peer"]: check for check in fp8_targets(record)}
        for name in names:
            entry = record["peers"].get(name)
            ratio = (record.get("speedup_vs") or {}).get(name)
            check = checks.get(name)
            cell = f"{ratio:.2f}x" if ratio is not None else "—"
            if check is not None:
                verdict = {True: "met", False: "**missed**", None: "not measured"}[check["met"]]
                cell += f" (≥ {check['target']}x: {verdict})"
            row += [f"{entry['us']:.1f}" if is_counted(entry) else entry_status(entry), cell]
        rows.append(row)
    summary = doc.get("summary") or summarize(doc["results"])
    closing = f"Targets met: {summary.get('targets_met', 0)} of {summary.get('targets', 0)}."
    return ["", "## fp8 KV cache: ours vs our bf16 path and FlashMLA fp8 (t_peer / t_ours; > 1: ours is faster)",
            "", "GB/s counts the fp8 cache at 1 byte a value.", "", *_table(header, rows), "", closing]


def render_markdown(doc: dict) -> str:
    names = _names(doc) or list(doc["peer_order"])
    lines = [*_header_lines(doc), *_fp8_table(doc), *_main_table(doc), *_peer_table(doc, names),
             *_check_table(doc, names), *_not_timed(doc)]
    return "\n".join(lines) + "\n"
