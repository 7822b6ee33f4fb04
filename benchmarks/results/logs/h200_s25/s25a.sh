#!/usr/bin/env bash
# s25a: v80 (seesaw consumers for the 64-row TMA kernel): its kernel GPU tests (-x), then 3 interleaved probe
# rounds against main on the 64-row TMA rows.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
git status --short 2>/dev/null | head -3
mkdir -p "$OUT/p"
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=100 ROUNDS=3 timeout -s KILL 540 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s4096/h64/q2,b132/s8192/h128/q2 \
    .variants/trees/main-nocheck .variants/trees/V80 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR|build" "$OUT/p.log" | head; tail -n 7 "$OUT/p.log"
