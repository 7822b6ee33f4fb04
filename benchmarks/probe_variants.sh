#!/usr/bin/env bash
# Kernel development on a GPU box: several source trees of this project (e.g. `git archive BRANCH | tar -x -C
# DIR`, one per experiment) built side by side, each with its own extension cache, then per tree its kernel GPU
# tests, then benchmarks/probe_decode.py on the same configs in interleaved rounds (round r starts one tree
# further, so that the card's slower clock windows hit every tree alike).
#   [ROUNDS=3] [PROBE_ARGS="--kv fp8"] [TESTS="tests/test_kernel_fp8_gpu.py"] \
#       bash benchmarks/probe_variants.sh OUT_DIR CONFIGS TREE...
# CONFIGS: probe_decode.py's --configs list. TESTS (default tests/test_kernel_gpu.py without the sanitizer test;
# "none" skips them): run with -x in each tree. A tree whose name ends in "-nocheck" skips the tests (a diagnostic
# build whose outputs are wrong by design). Builds run in parallel (CPU) before anything touches the GPU.
# A new kernel can hang: every step is killed after 3 minutes (PROBE_TEST_TIMEOUT, PROBE_TIMEOUT).
# Everything lands in OUT_DIR/variants.tgz (one file: the device returns few) plus a summary on stdout: each
# tree's mean over the rounds and its ratio to the first tree's (benchmarks/probe_summary.py).
set -uo pipefail
OUT=$1 CONFIGS=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-1} TESTS=${TESTS:-tests/test_kernel_gpu.py}
TEST_FILTER=()
[ "$TESTS" = tests/test_kernel_gpu.py ] && TEST_FILTER=(-k "not sanitizer")
WORK=$(mktemp -d /tmp/probe_variants.XXXXXX)
TREES=() NAMES=()
for tree in "$@"; do TREES+=("$(cd "$tree" && pwd)") || exit 2; NAMES+=("$(basename "$tree")"); done
for tree in "${TREES[@]}"; do
    name=$(basename "$tree")
    (cd "$tree" && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=$PWD:${PYTHONPATH:-} timeout 600 \
        python3 -c "from mla_backend import _build; _build.load_extension()" >"$WORK/build_$name.log" 2>&1
     echo "build $name rc=$?" >>"$WORK/builds.txt") &
done
wait
cat "$WORK/builds.txt"
for tree in "${TREES[@]}"; do
    name=$(basename "$tree")
    [[ $name == *-nocheck || $TESTS == none ]] && continue
    (cd "$tree" && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=$PWD:${PYTHONPATH:-} \
        timeout -s KILL "${PROBE_TEST_TIMEOUT:-180}" python3 -m pytest -x -q -m gpu -p no:cacheprovider $TESTS \
        "${TEST_FILTER[@]}" >"$WORK/tests_$name.log" 2>&1)
    echo "$name tests rc=$?: $(tail -n 1 "$WORK/tests_$name.log")"
    grep -E "^(FAILED|ERROR)" "$WORK/tests_$name.log" | head -n 5
done
n=${#TREES[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
        tree=${TREES[$(((i + round - 1) % n))]}
        name=$(basename "$tree")
        (cd "$tree" && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=$PWD:${PYTHONPATH:-} \
            timeout -s KILL "${PROBE_TIMEOUT:-180}" python3 benchmarks/probe_decode.py --configs "$CONFIGS" \
            ${PROBE_ARGS:-} >"$WORK/probe_${name}_$round.log" 2>&1)
        echo "$name round $round rc=$?"
    done
done
python3 "$HERE/probe_summary.py" "$WORK" "${NAMES[@]}" | tee "$WORK/summary.txt"
mkdir -p "$OUT" && tar -czf "$OUT/variants.tgz" -C "$WORK" .
