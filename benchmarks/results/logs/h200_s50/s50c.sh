#!/usr/bin/env bash
# s50c: which half of v154 lost 3-6% in s50b. Probe (two rounds, no tests: diagnostics) of main, v154a (the piece's
# first block's single pass alone) and v154b (P V issued before the barrier alone) on the 128-head rows.
# Predicted: v154a level on the b128 rows and -1% at b1; v154b carries the loss.
set -uo pipefail
T=.variants/s50/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 230 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V154A-nocheck $T/V154B-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 5 "$OUT/p.log"
cd "$OUT" && tar czf s50c.tgz p p.log pip.log && rm -rf p p.log pip.log
