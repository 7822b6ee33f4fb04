#!/usr/bin/env bash
# Kernel development on a GPU box: several source trees of this project (e.g. `git archive BRANCH | tar -x -C
# DIR`, one per experiment) built side by side, each with its own extension cache, then per tree its kernel GPU
# tests and benchmarks/probe_decode.py on the same configs, one after another on the same card.
#   bash benchmarks/probe_variants.sh OUT_DIR CONFIGS TREE...
# CONFIGS: probe_decode.py's --configs list. A tree whose name ends in "-nocheck" skips the tests (a diagnostic
# build whose outputs are wrong by design). Builds run in parallel (CPU) before anything touches the GPU.
# A new kernel can hang: tests stop at the first failure and every step is killed after 3 minutes.
# Everything lands in OUT_DIR/variants.tgz (one file) plus a summary on stdout.
set -uo pipefail
OUT=$1 CONFIGS=$2
shift 2
WORK=$(mktemp -d /tmp/probe_variants.XXXXXX)
TREES=()
for tree in "$@"; do TREES+=("$(cd "$tree" && pwd)") || exit 2; done
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
    cd "$tree" || continue
    export MLA_BACKEND_CACHE=/tmp/ext-$name
    if [[ $name != *-nocheck ]]; then
        PYTHONPATH=$PWD:${PYTHONPATH:-} timeout -s KILL ${PROBE_TEST_TIMEOUT:-180} python3 -m pytest -x -q -m gpu -p no:cacheprovider \
            tests/test_kernel_gpu.py -k "not sanitizer" >"$WORK/tests_$name.log" 2>&1
        echo "$name tests rc=$?: $(tail -n 1 "$WORK/tests_$name.log")"
    fi
    PYTHONPATH=$PWD:${PYTHONPATH:-} timeout -s KILL ${PROBE_TIMEOUT:-180} python3 benchmarks/probe_decode.py --configs "$CONFIGS" \
        >"$WORK/probe_$name.log" 2>&1
    echo "$name probe rc=$?"
    grep -E "^b[0-9]" "$WORK/probe_$name.log" | cut -c1-100
done
mkdir -p "$OUT" && tar -czf "$OUT/variants.tgz" -C "$WORK" .
