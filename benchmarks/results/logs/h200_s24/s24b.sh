#!/usr/bin/env bash
# s24b: v75 (warpgroup 0's O rescale before the V-tail branch), v76 (P handed to warpgroup 1 after warpgroup 0's
# P V wait), v76b (warpgroup 1 rescales on P, issues after warpgroup 0's P V) against main, two rounds.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/p"
PROBE_TIMEOUT=100 ROUNDS=2 timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b132/s8192/h128/q2,b64/s4096/h64/q2 \
    .variants/trees/main-nocheck .variants/trees/V75-nocheck .variants/trees/V76-nocheck .variants/trees/V76B-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 12 "$OUT/p.log"
