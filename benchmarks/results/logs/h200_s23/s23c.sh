#!/usr/bin/env bash
# s23c: v70 family: v70b (queued Q K^T behind both P V issues), v70c (v70b structure, main order)
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
PROBE_TIMEOUT=120 ROUNDS=2 timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT" \
    b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b64/s4096/h64/q2 \
    .variants/trees/main-nocheck .variants/trees/v70b .variants/trees/v70c-nocheck .variants/trees/v70-nocheck > "$OUT/probe.log" 2>&1
echo "rc=$?"; tail -n 12 "$OUT/probe.log"
