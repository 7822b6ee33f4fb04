#!/usr/bin/env bash
# s42b: why v126 lost (s42a: h32 +3.4%). Knockouts of main and of v126 (wide_diagnostics.py's fp8-noload and
# fp8-notranspose snippets applied to each tree): if v126 without loads beats main without loads, the overlap shortened
# warpgroup 0's chain and the copies / transpose pace the block; if not, the overlapped Q.K^T slows the softmax.
# Predicted (s40e: main 100.9, noload 87.2, notranspose 97.2): V126-noload 80-87 (the chain shortened) or >= 87.
# Setup: s42a's trees, plus per tree a copy with wide_diagnostics.edited(tree, "fp8-noload") and one with
# "fp8-notranspose" written over it (README.md here).
set -uo pipefail
T=.variants/s42/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b8/s8192/h32/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh \
    "$OUT/p" "$C" $T/main-nocheck $T/V126 $T/main-noload-nocheck $T/V126-noload-nocheck \
    $T/main-notranspose-nocheck $T/V126-notranspose-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build" "$OUT/p.log" | head; tail -n 4 "$OUT/p.log"
