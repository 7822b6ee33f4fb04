#!/usr/bin/env bash
# Kernel development on a GPU box: benchmarks/bench_decode.py (the grid's protocol: every peer of the peers bundle,
# interleaved, each output checked) from several source trees in turn, in one call, so that every tree meets the same
# peers and the same power state; the probe alone moves too much between rounds to judge the 128-head rows
# (kernels/PERF_NOTES.md, forty-ninth session). Name the baseline tree before and after the experiments. Trees as for
# benchmarks/probe_variants.sh (benchmarks/variant_trees.sh). Run k (1, 2, ...) writes OUT_DIR/bench_<k>_<tree>/ and
# its output to OUT_DIR/bench_<k>_<tree>.log; stdout gets each run's rows of "ours vs the best peer".
#   [BENCH_TIMEOUT=120] bash benchmarks/bench_trees.sh OUT_DIR CONFIGS PEERS TREE[:COMMIT]...
# COMMIT is what the results record (default: the tree's name).
set -uo pipefail
if [ $# -lt 4 ]; then
    echo "usage: bash benchmarks/bench_trees.sh OUT_DIR CONFIGS PEERS TREE[:COMMIT]..." >&2
    exit 2
fi
CONFIGS=$2
mkdir -p "$1" && OUT=$(cd "$1" && pwd) && PEERS=$(cd "$3" && pwd) || exit 2
shift 3
k=0
for spec in "$@"; do
    tree=${spec%%:*} commit=${spec#*:}
    name=$(basename "$tree") k=$((k + 1))
    [ "$commit" = "$spec" ] && commit=$name
    run=$OUT/bench_${k}_$name
    (cd "$tree" && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=$PWD:${PYTHONPATH:-} \
        timeout -s KILL "${BENCH_TIMEOUT:-120}" python3 benchmarks/bench_decode.py --configs "$CONFIGS" \
        --peers "$PEERS" --commit "$commit" --out-dir "$run" >"$run.log" 2>&1)
    echo "bench $k $name rc=$?"
    grep -hE '^\| b[0-9]' "$run"/*.md 2>/dev/null | grep -v '^| config' | head -n 40
done
