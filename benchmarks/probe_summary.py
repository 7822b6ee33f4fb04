"""Summary of probe_variants.sh's interleaved rounds: per config, each tree's mean time over its rounds (each
round's time in parentheses) and its ratio to the first tree's.

    python benchmarks/probe_summary.py DIR TREE...   (DIR holds probe_<tree>_<round>.log)
"""
from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

LINE = re.compile(r"^(b\S+)\s+([\d.]+) us\b")


def read_times(log: Path, checked: bool = True) -> dict[str, float]:
    """{config: µs} from one probe_decode.py log; when checked, a config whose check failed is left out."""
    times = {}
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.match(line)
        if match and (" ok " in line or not checked):
            times[match.group(1)] = float(match.group(2))
    return times


def collect(directory: Path, trees: list[str]) -> dict[str, dict[str, list[float]]]:
    """{config: {tree: [µs per round, in round order]}} over every probe_<tree>_<round>.log. A tree named
    *-nocheck is a diagnostic build whose outputs are wrong by design (probe_variants.sh): its failed checks count."""
    table: dict[str, dict[str, list[float]]] = {}
    for tree in trees:
        logs = sorted(directory.glob(f"probe_{tree}_*.log"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        for log in logs:
            for config, us in read_times(log, checked=not tree.endswith("-nocheck")).items():
                table.setdefault(config, {}).setdefault(tree, []).append(us)
    return table


def render(table: dict[str, dict[str, list[float]]], trees: list[str]) -> str:
    lines = []
    for config, by_tree in table.items():
        base = statistics.mean(by_tree[trees[0]]) if trees[0] in by_tree else None
        cells = []
        for tree in trees:
            if tree not in by_tree:
                cells.append(f"{tree} -")
                continue
            mean = statistics.mean(by_tree[tree])
            ratio = f" {mean / base:.3f}x" if base and tree != trees[0] else ""
            rounds = " ".join(f"{us:.1f}" for us in by_tree[tree])
            cells.append(f"{tree} {mean:7.1f} ({rounds}){ratio}")
        lines.append(f"{config:<24} " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    directory, trees = Path(argv[0]), argv[1:]
    print(render(collect(directory, trees), trees))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
