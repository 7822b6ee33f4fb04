#!/usr/bin/env bash
# s24d: v78 (the producer prefetches the next request's Q rows into L2 about two blocks ahead): kernel tests,
# then 3 interleaved probe rounds against main on 2/4/8 requests a CTA at equal work and the 128-head rows.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/p"
PROBE_TIMEOUT=120 ROUNDS=3 timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/p" \
    b66/s16384/h128/q2,b132/s8192/h128/q2,b264/s4096/h128/q2,b128/s4096/h128/q1,b16/s4096/h128/q1,b128/s4096/h64/q1,b256/s2048/h64/q1 \
    .variants/trees/main-nocheck .variants/trees/V78 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -5; tail -n 7 "$OUT/p.log"
