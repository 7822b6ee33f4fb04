#!/usr/bin/env bash
# s33g (diagnostic): why v91b's row halves run slower than v90's on the same plans. V91e-nocheck: v91b whose 32-row
# kernel always runs the row halves (no Split::kRows branch; the wait before the barrier init kept); V91f-nocheck:
# the same with the barrier init before the wait, as v90 (and main) have it. Small batches only (row-halves plans
# there). Carry .variants/s34 (trees main-nocheck, V91b = fa558ae, V91e-nocheck = branch exp-v91e-halves-only
# (39aa79e), V91f-nocheck = the same without the wait at the top of mla_decode_fp8_32_rows_kernel).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b32/s1024/h32/q1,b4/s4096/h16/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 400 bash benchmarks/probe_variants.sh \
    "$OUT/fp8" "$C" $T/main-nocheck $T/V91b $T/V91e-nocheck $T/V91f-nocheck > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; tail -n 7 "$OUT/fp8.log"
