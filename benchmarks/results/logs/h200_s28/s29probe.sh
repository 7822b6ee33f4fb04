#!/usr/bin/env bash
# The probe call of s29b.sh and s29d.sh: the cutlass headers from the carried wheel, then probe_variants.sh over
# .variants/trees/TREE... on CONFIGS (each tree's bf16 kernel GPU tests, then 2 interleaved probe rounds).
#   bash benchmarks/results/logs/h200_s28/s29probe.sh CONFIGS TREE...
set -uo pipefail
configs=$1
shift
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
trees=()
for tree in "$@"; do trees+=(".variants/trees/$tree"); done
PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/p" \
    "$configs" "${trees[@]}" > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 11 "$OUT/p.log"
