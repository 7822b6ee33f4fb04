"""Plot serving results files (benchmarks/bench_serving.py's serving_<card>.json): a panel per file and engine, decode
tokens/s of every backend at each (prompt length, concurrency), ours outlined, with ours / the best built-in of that
file over each group. Several files of one engine (e.g. runs that served ours beside different built-ins) stack up.

    python benchmarks/plot_serving.py benchmarks/results/serving_h200.json [MORE.json ...] [--png docs/h200-serving.png]

Needs matplotlib (`pip install ".[plot]"`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_serving  # noqa: E402

OURS_COLOR = "#d62728"
PALETTE = ["#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd", "#8c564b"]


def measured_engines(report: dict) -> list[tuple[str, dict]]:
    return [(engine, entry) for engine, entry in report["engines"].items()
            if not entry.get("skipped") and entry.get("results")]


def builtin_color(engine: str, backend: str) -> str:
    """The same colour for a built-in backend in every panel (its place in the engine's list of backends)."""
    known = bench_serving.ENGINES.get(engine, ())
    index = known.index(backend) if backend in known else len(known) + sum(map(ord, backend))
    return PALETTE[index % len(PALETTE)]


def plot(reports: list[dict], png: Path) -> Path:
    """One panel per measured engine of each report; raises ImportError without matplotlib, ValueError with nothing
    measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [panel for report in reports for panel in measured_engines(report)]
    if not engines:
        raise ValueError("no engine in these results files has measured backends")
    fig, axes = plt.subplots(len(engines), 1, figsize=(11, 4.8 * len(engines)), squeeze=False)
    for ax, (engine, entry) in zip(axes[:, 0], engines, strict=True):
        ours = bench_serving.OURS[engine]
        backends = [b for b in entry["backends"] if b in entry["results"]]
        by_backend = {b: bench_serving.points_by_key(entry["results"][b]) for b in backends}
        keys = sorted({key for points in by_backend.values() for key in points})
        cell_ratios = bench_serving.ratios(entry, engine)
        width = 0.8 / len(backends)
        for j, backend in enumerate(backends):
            xs = [i + (j - (len(backends) - 1) / 2) * width for i in range(len(keys))]
            values = [bench_serving.decode_rate(by_backend[backend][key]) if key in by_backend[backend] else 0
                      for key in keys]
            mine = backend == ours
            ax.bar(xs, values, width, label=backend, color=OURS_COLOR if mine else builtin_color(engine, backend),
                   edgecolor="black" if mine else "none", linewidth=0.6)
        rates = [bench_serving.decode_rate(p) for points in by_backend.values() for p in points.values()]
        top = max(rates, default=1)
        for i, key in enumerate(keys):
            ratio = cell_ratios.get(f"{key[0]}x{key[1]}")
            if ratio:
                ax.text(i, top * 1.6, f"{ratio['ratio']:.2f}x", ha="center", fontsize=9,
                        color=OURS_COLOR if ratio["ratio"] >= 1 else "black")
        # c = 1 and c = 64 differ by ~30x: a log axis keeps every group readable
        ax.set_yscale("log")
        ax.set_ylim(max(min(rates, default=1) / 2, 1), top * 3)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{prompt} x {c}" for prompt, c in keys])
        ax.set_ylabel("decode tokens/s (log)")
        ax.set_title(f"{engine} {entry.get('version') or ''} ({', '.join(entry['backends'])}): {ours} / best built-in "
                     "of these above each group", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(ncol=len(backends), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    axes[0, 0].set_xlabel("prompt tokens x concurrent requests", labelpad=2)
    first = reports[0]
    fig.suptitle(f"Serving decode on {first['device_name']}, TP {first['workload']['tp']}; higher is better")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--png", type=Path, help="default: the first results file with .png")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.results]
    print(plot(reports, args.png or args.results[0].with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
