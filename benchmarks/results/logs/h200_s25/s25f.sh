#!/usr/bin/env bash
# s25f: v80c (staggered seesaw) kernel GPU tests (-x), then 2 interleaved probe rounds against main.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/p"
PROBE_TEST_TIMEOUT=70 PROBE_TIMEOUT=40 ROUNDS=2 timeout -s KILL 215 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1 \
    .variants/trees/main-nocheck .variants/trees/V80C > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR|build" "$OUT/p.log" | head; tail -n 4 "$OUT/p.log"
