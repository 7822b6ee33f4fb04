#!/usr/bin/env bash
# s48d: v148d against main and v148b (s48c: tests 1247 passed; 1.039x main at h128/q1, 1.033x q2, 1.006x b132, 1.125x
# b16/h128, 1.117x b1/s32768/h128). v148d: B's second group is read 0-3 then 8 (B's P lives in sub-tile 8, freed
# last by warpgroup 0's P_B V_B: v148b read it first); at a request's last pair warpgroup 0 no longer issues a
# thrown-away Q.K^T (1 of 2 x pieces' pairs: ~3% of the QK work at b1/s32768, ~1% at h128/q1).
# Predicted: v148d -1..-2% against v148b on h128/q1, -3..-5% on b16 and b1.
set -uo pipefail
T=.variants/s48/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/d" "$C" $T/main-nocheck $T/V148B-nocheck $T/V148D \
    > "$OUT/d.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|passed|failed|FAILED|ERROR|Error" "$OUT/d.log" | head -20; tail -n 6 "$OUT/d.log"
