"""benchmarks/bench_trees.sh runs bench_decode.py from each named tree in turn and prints each run's rows (here with
stand-in trees whose bench_decode.py writes a results table, no GPU)."""
from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_trees.sh"

FAKE_BENCH = '''
import sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
out = Path(args["--out-dir"])
out.mkdir(parents=True)
(out / "h200.md").write_text("| config | ours µs |\\n|---|---|\\n| " + args["--configs"] + " | "
                             + args["--commit"] + " |\\n")
'''


def fake_tree(root: Path, name: str) -> Path:
    tree = root / name
    (tree / "benchmarks").mkdir(parents=True)
    (tree / "benchmarks" / "bench_decode.py").write_text(FAKE_BENCH)
    return tree


def test_each_tree_runs_in_turn_with_its_commit(tmp_path):
    main, v1 = fake_tree(tmp_path, "main"), fake_tree(tmp_path, "V1")
    peers = tmp_path / "peers"
    peers.mkdir()
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out"), "b1/s64/h16/q1", str(peers),
                             f"{main}:abc1234", str(v1), f"{main}:abc1234"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines == ["bench 1 main rc=0", "| b1/s64/h16/q1 | abc1234 |", "bench 2 V1 rc=0", "| b1/s64/h16/q1 | V1 |",
                     "bench 3 main rc=0", "| b1/s64/h16/q1 | abc1234 |"]
    assert (tmp_path / "out" / "bench_3_main" / "h200.md").exists()


def test_too_few_arguments_print_the_usage():
    result = subprocess.run(["bash", str(SCRIPT), "out", "b1/s64/h16/q1"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: bash benchmarks/bench_trees.sh" in result.stderr
