#!/usr/bin/env bash
# s23b: v70 (warpgroup 0 queues the next Q K^T behind its P V, TMA instantiation) vs main: kernel tests, 3 probe rounds.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
PROBE_TIMEOUT=120 ROUNDS=3 timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT" \
    b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b1/s32768/h128/q1,b16/s4096/h128/q1,b64/s4096/h64/q2 \
    .variants/trees/main-nocheck .variants/trees/v70 > "$OUT/probe.log" 2>&1
echo "rc=$?"; tail -n 12 "$OUT/probe.log"
