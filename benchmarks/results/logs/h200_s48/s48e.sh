#!/usr/bin/env bash
# s48e: v148e (v148d with B's groups sized right: s48d's v148d refilled sub-tile 8, B's P, with B's first group,
# before warpgroup 0 had read it, and failed the tests) against main and v148b, both noload twins, then each build
# alone for 3 s at b132 and h128/q1 (benchmarks/power_probe.py: sustained time, clock and energy a step).
# Predicted: tests pass; v148e -1% against v148b at h128/q1 (no thrown-away Q.K^T at a request's end), -2% on b16
# and b1; v148e-noload ~0.96x main-noload (s48b's v148-noload); sustained energy a step within +-2% of main's.
set -uo pipefail
T=.variants/s48/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 420 bash benchmarks/probe_variants.sh "$OUT/e" "$C" $T/main-nocheck $T/V148B-nocheck $T/V148E \
    $T/main-noload-nocheck $T/V148E-noload-nocheck > "$OUT/e.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR|Error" "$OUT/e.log" | head -10; tail -n 6 "$OUT/e.log"
for name in main-nocheck V148E main-nocheck V148E; do
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 python3 \
        benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 --seconds 3 \
        >> "$OUT/power_$name.log" 2>&1)
    echo "power $name rc=$?"; grep -E '^b[0-9]' "$OUT/power_$name.log" | tail -n 2
done
