#!/usr/bin/env bash
# s32d (thirty-second session): noload twins (the TMA producer arrives without loading; outputs wrong by design) of
# main and v86, beside both, on the 128-head rows: does v86's seesaw lose in its loads or in its consumers?
# One call (carry .variants/s32). Trees: .variants/s32/trees (V86-nocheck = exp-v86-seesaw-flashmla-order at 0b5bee5,
# tests passed in s32c; the noload edit as in .variants/s26prep.sh).
set -uo pipefail
T=.variants/s32/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s32/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/main-noload-nocheck $T/V86-nocheck $T/V86-noload-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 7 "$OUT/p.log"
