"""Where a kernel's warps spend their time, from ncu's SASS source counters: a summary of the CSV that
`ncu -i REPORT --page source --csv --print-source sass` writes (gzipped or not), for a report taken with
`--section SourceCounters --section WarpStateStats` (benchmarks/results/logs/h200_s44/s44g.sh).

    python benchmarks/ncu_sass_summary.py wide16_sass.csv.gz                  # opcodes, stall reasons, top lines
    python benchmarks/ncu_sass_summary.py wide16_sass.csv.gz --ranges d6140-d7f30,d7f40-d98f0 --per 65536
    python benchmarks/ncu_sass_summary.py wide16_sass.csv.gz --cuts 'HGMMA.*gsb0|DEPBAR|SYNCS.PHASECHK'

--ranges sums the samples, instructions and stall reasons of address ranges (the last five hex digits of each
address, as printed); --per divides their instruction counts by a count of warp-blocks (warps x blocks of the
launch); --cuts prints the running totals between the instructions a regular expression matches, which splits a
kernel into its phases (a wait, an issue, a barrier) before --ranges names them.
"""
from __future__ import annotations

import argparse
import collections
import csv
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


@dataclass
class Line:
    address: str   # the last five hex digits
    source: str
    samples: float
    executed: float
    stalls: dict[str, float]   # reason (without "stall_") -> samples


def _number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def read_lines(path: Path) -> list[Line]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header_at = next(i for i, row in enumerate(rows) if "Address" in row and "Source" in row)
    header = rows[header_at]
    index = {name: i for i, name in enumerate(header)}
    reasons = [name for name in header if name.startswith("stall_") and "(Not Issued)" not in name]
    lines = []
    for row in rows[header_at + 1:]:
        if len(row) != len(header):
            continue
        lines.append(Line(row[index["Address"]][-5:], row[index["Source"]].strip(), _number(row[index[SAMPLES]]),
                          _number(row[index[EXECUTED]]),
                          {name[len("stall_"):]: _number(row[index[name]]) for name in reasons}))
    return lines


def opcode(source: str) -> str:
    """The instruction's opcode without its modifiers or predicate: '@!P0 BRA 0x..' -> 'BRA'."""
    return re.sub(r"^@!?U?P\w+\s+", "", source).split(" ")[0].split(".")[0]


def stall_mix(lines: list[Line], top: int = 6) -> str:
    reasons: collections.Counter[str] = collections.Counter()
    for line in lines:
        reasons.update(line.stalls)
    total = sum(reasons.values()) or 1.0
    return ", ".join(f"{name} {100 * value / total:.0f}%" for name, value in reasons.most_common(top))


def summary(lines: list[Line], top: int) -> str:
    samples = sum(line.samples for line in lines) or 1.0
    executed = sum(line.executed for line in lines) or 1.0
    by_opcode_executed: collections.Counter[str] = collections.Counter()
    by_opcode_samples: collections.Counter[str] = collections.Counter()
    for line in lines:
        by_opcode_executed[opcode(line.source)] += line.executed
        by_opcode_samples[opcode(line.source)] += line.samples
    out = [f"{executed:.4g} warp instructions executed, {samples:.0f} stall samples",
           "opcode        executed  samples"]
    out += [f"  {name:10s} {100 * count / executed:6.1f}% {100 * by_opcode_samples[name] / samples:6.1f}%"
            for name, count in by_opcode_executed.most_common(top)]
    out.append(f"stall reasons: {stall_mix(lines, 10)}")
    out.append("instructions with the most samples:")
    for line in sorted(lines, key=lambda x: -x.samples)[:top]:
        reason = max(line.stalls, key=line.stalls.get) if line.stalls else "-"
        out.append(f"  {line.address} {100 * line.samples / samples:5.1f}% {reason:16s} executed {line.executed:10.0f}"
                   f"  {line.source[:72]}")
    return "\n".join(out)


def ranges(lines: list[Line], spec: str, per: float) -> str:
    samples = sum(line.samples for line in lines) or 1.0
    out = []
    for item in spec.split(","):
        first, last = (int(x, 16) for x in item.split("-"))
        chosen = [line for line in lines if first <= int(line.address, 16) <= last]
        share = sum(line.samples for line in chosen) / samples
        executed = sum(line.executed for line in chosen) / per
        out.append(f"{item}: {100 * share:5.1f}% of samples, {executed:8.0f} instructions"
                   f"{' a warp-block' if per != 1 else ''}; {stall_mix(chosen)}")
    return "\n".join(out)


def cuts(lines: list[Line], pattern: str) -> str:
    samples = sum(line.samples for line in lines) or 1.0
    matcher = re.compile(pattern)
    out, since, executed = [], 0.0, 0.0
    for line in lines:
        since += line.samples
        executed += line.executed
        if matcher.search(line.source):
            out.append(f"{line.address} {100 * since / samples:5.1f}% of samples and {executed:11.0f} instructions up to"
                       f" here: {line.source[:64]}")
            since = executed = 0.0
    out.append(f"after the last cut: {100 * since / samples:5.1f}% of samples")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="ncu --page source --csv --print-source sass output (.csv or .csv.gz)")
    parser.add_argument("--top", type=int, default=20, help="opcodes and instructions listed")
    parser.add_argument("--ranges", help="comma-separated address ranges, e.g. d6140-d7f30")
    parser.add_argument("--per", type=float, default=1.0, help="divide a range's instructions by this (warp-blocks)")
    parser.add_argument("--cuts", help="regular expression of the instructions that end a phase")
    args = parser.parse_args()
    lines = read_lines(args.csv)
    if not lines:
        raise SystemExit(f"{args.csv}: no SASS lines with an Address and a Source column")
    if args.ranges:
        print(ranges(lines, args.ranges, args.per))
    elif args.cuts:
        print(cuts(lines, args.cuts))
    else:
        print(summary(lines, args.top))


if __name__ == "__main__":
    main()
