"""`mla-backend bench`: run benchmarks/bench_decode.py, print its results as a table, plot them.

The benchmark lives in the repository (benchmarks/), not in the installed package: it is found in the current
directory's checkout or next to the package of an editable install, and imported by path.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path

from ..kernel_facts import HOPPER
from . import terminal

OURS = "mla_backend"
BENCH_RELPATH = Path("benchmarks") / "bench_decode.py"
NO_BENCH = (
    "mla-backend bench: benchmarks/bench_decode.py is not part of the installed package; run this command "
    "from a checkout of the mla_backend repository (or install it with `pip install -e .`). "
    "`mla-backend bench --plot <results.json>` works anywhere."
)
# mla-backend is not on PyPI yet: its `plot` extra installs from a checkout only.
NO_MATPLOTLIB = "the plot needs matplotlib: pip install matplotlib (from a checkout: pip install '.[plot]')"


def find_bench() -> Path | None:
    """bench_decode.py of the checkout in the current directory, else of the checkout holding this package."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / BENCH_RELPATH).is_file() and (root / "pyproject.toml").is_file():
            return root / BENCH_RELPATH
    return None


def load_bench(path: Path):
    """Import bench_decode.py by path (it puts its own directory on sys.path for `peers`)."""
    spec = importlib.util.spec_from_file_location("bench_decode", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_decode"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def run(bench_argv: list[str], out_dir: Path | None, png: Path | None) -> int:
    """Run the benchmark with bench_argv, then print and plot the results file it wrote."""
    path = find_bench()
    if path is None:
        terminal.say(NO_BENCH, sys.stderr)
        return 2
    bench = load_bench(path)
    start = time.time()
    rc = bench.main(bench_argv)
    if rc != 0:
        if rc == 2 and not _cuda_available():
            terminal.say(f"mla-backend bench: the benchmark needs {HOPPER}; `mla-backend doctor` says what is "
                         "missing here. `mla-backend bench --plot <results.json>` plots an existing results file.",
                         sys.stderr)
        return rc
    if any(arg in ("--list", "--render") for arg in bench_argv):
        return 0
    out_dir = out_dir or bench.BENCH_DIR / "results"
    written = [p for p in out_dir.glob("*.json") if p.stat().st_mtime >= start - 1]
    if not written:
        terminal.say(f"mla-backend bench: no results file was written in {out_dir}", sys.stderr)
        return 1
    return show(max(written, key=lambda p: p.stat().st_mtime), png, require_plot=False)


def show(results: Path, png: Path | None, require_plot: bool = True) -> int:
    """Print the table of a results file and write its plot (default: the JSON's path with .png); 2 if the file
    cannot be read as bench_decode.py's results."""
    try:
        doc = read_results(results)
    except ValueError as exc:
        terminal.say(f"mla-backend bench: {exc}", sys.stderr)
        return 2
    print(format_table(doc))
    png = Path(png) if png is not None else Path(results).with_suffix(".png")
    try:
        plot(doc, png)
    except ImportError:
        terminal.say(f"mla-backend bench: {NO_MATPLOTLIB}", sys.stderr)
        return 1 if require_plot else 0
    print(f"\nwrote {png}")
    return 0


def read_results(path: Path) -> dict:
    """A results file of bench_decode.py; ValueError saying why when it is missing or is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read the results file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}); --plot takes a results file of bench_decode.py, "
                         "e.g. benchmarks/results/h200.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or not isinstance(doc.get("env"), dict):
        raise ValueError(f"{path} is not a results file of bench_decode.py (it has no 'env' and 'results'); "
                         "e.g. benchmarks/results/h200.json is one")
    return doc


def peer_names(doc: dict) -> list[str]:
    """Implementations with at least one result, ours first, then in the document's peer order."""
    seen = {name for record in doc["results"] for name in record["peers"]}
    order = [OURS] + [n for n in [*doc.get("peers", {}), *doc.get("peer_order", [])] if n != OURS]
    return [n for n in dict.fromkeys(order) if n in seen]


def short_label(doc: dict, name: str) -> str:
    """'FlashMLA (vLLM 0.26 _flashmla_C)' -> 'FlashMLA'; ours is 'ours'. Two modes of one peer (the same
    short label, e.g. FA3-MLA's fa3_mla and fa3_mla_default) are told apart by their names."""
    if name == OURS:
        return "ours"
    short = _label_head(doc, name)
    if any(other != name and _label_head(doc, other) == short for other in doc.get("peers", {})):
        return name
    return short


def _label_head(doc: dict, name: str) -> str:
    label = doc.get("peers", {}).get(name, {}).get("label", name).split(" (")[0]
    return re.sub(r"^vLLM [\d.]+ ", "", label)


def has_time(entry: dict | None) -> bool:
    """A time that counts. Files of schema 2 mark a time above the card's measured ceilings `valid: false`
    (a harness bug); a time that failed its reference check is not recorded at all."""
    return entry is not None and entry.get("us") is not None and entry.get("valid", True) is not False


def missing_label(entry: dict | None) -> str:
    """Why a config has no time for an implementation: not in the file, not supported (n/a), above the
    measured ceilings (invalid), crashed its process, or failed (an error or the reference check)."""
    if entry is None:
        return "not run"
    if entry.get("us") is not None:
        return "invalid"
    if entry.get("crashed"):
        return "crashed"
    return "n/a" if str(entry.get("error", "")).startswith("PeerUnavailable") else "failed"


def format_table(doc: dict) -> str:
    env = doc["env"]
    names = peer_names(doc)
    others = [n for n in names if n != OURS]
    header = ["config"] + [short_label(doc, n) for n in names] + [f"vs {short_label(doc, n)}" for n in others]
    rows = []
    for record in doc["results"]:
        cells = [record["key"]]
        for name in names:
            entry = record["peers"].get(name)
            if not has_time(entry):
                cells.append(missing_label(entry))
            else:
                cells.append(f"{entry['us']:.1f} ({entry['gbps']:.0f}, {entry['tflops']:.0f})")
        speedups = record.get("speedup_vs", {})
        cells += [f"{speedups[n]:.2f}" if n in speedups else "—" for n in others]
        rows.append(cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        (f"{env.get('device_name', env.get('card'))}: torch {env.get('torch')}, CUDA {env.get('cuda')}, "
         f"driver {env.get('driver')}, commit {env.get('commit')}, {env.get('date')}"),
        "µs per decode step (GB/s, TFLOPS); 'vs X' = X's time / ours (> 1: ours is faster)",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    mean = (doc.get("summary") or {}).get("geomean_ratio_vs_best_peer")
    if mean is not None:
        lines += ["", f"ours vs the best peer (t_best_peer / t_ours), geomean over configs: {mean:.2f}x"]
    return "\n".join(lines)


def plot(doc: dict, png: Path) -> Path:
    """Grouped bars of GB/s (top) and TFLOPS (bottom) per config and implementation. Raises ImportError
    without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = peer_names(doc)
    keys = [record["key"] for record in doc["results"]]
    colors = {OURS: "#d62728"}
    palette = ["#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd", "#8c564b"]
    for i, name in enumerate(n for n in names if n != OURS):
        colors[name] = palette[i % len(palette)]
    fig, axes = plt.subplots(2, 1, figsize=(13, 8.5), sharex=True)
    width = 0.8 / len(names)
    for ax, metric, label in ((axes[0], "gbps", "GB/s"), (axes[1], "tflops", "TFLOPS")):
        top = max((r["peers"][n].get(metric) or 0 for r in doc["results"] for n in names
                   if has_time(r["peers"].get(n))), default=1)
        for j, name in enumerate(names):
            xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(keys))]
            values = [r["peers"][name].get(metric) if has_time(r["peers"].get(name)) else None
                      for r in doc["results"]]
            ax.bar(xs, [v or 0 for v in values], width, color=colors[name], label=short_label(doc, name),
                   edgecolor="black" if name == OURS else "none", linewidth=0.6)
            for x, value, record in zip(xs, values, doc["results"], strict=True):
                if value is None:
                    ax.text(x, top * 0.01, missing_label(record["peers"].get(name)), rotation=90, ha="center",
                            va="bottom", fontsize=7, color=colors[name])
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].legend(ncol=len(names), loc="upper center", bbox_to_anchor=(0.5, 1.16), frameon=False)
    axes[1].set_xticks(range(len(keys)))
    axes[1].set_xticklabels(keys, rotation=25, ha="right")
    axes[1].set_xlabel("config (batch / KV length / query heads / query length)")
    env = doc["env"]
    fig.suptitle(f"MLA decode step on {env.get('device_name', env.get('card'))} "
                 f"(torch {env.get('torch')}, commit {env.get('commit')}); higher is better", y=0.995)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def card_slug(device_name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100': the first word with letters and digits, vendor dropped (results file names)."""
    words = [w for w in re.split(r"[\s_]+", device_name.lower()) if w and w != "nvidia"]
    for word in words:
        if re.search(r"[a-z]", word) and re.search(r"\d", word):
            return re.sub(r"[^a-z0-9]+", "-", word.split("-")[0]).strip("-")
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words)).strip("-") or "gpu"
