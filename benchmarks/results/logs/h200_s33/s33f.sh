#!/usr/bin/env bash
# s33f: v91b (v91 with the two CTAs of a row-halves entry neighbours in launch order: 2k and 2k + 1, as v90's
# grid (2, parts / 2) had them) against main and v91 (s33e: row halves 5-18% slower than v90's at the same plans).
# Carry .variants/s34 (trees: main-nocheck = f0be7f7, V91-nocheck = 65b89ce, V91b = fa558ae).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b32/s1024/h32/q1,b32/s4096/h32/q1
C=$C,b64/s2048/h16/q2,b4/s4096/h16/q2,b128/s4096/h32/q1,b128/s4096/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=240 \
    PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck \
    $T/V91-nocheck $T/V91b > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/fp8.log" | head -8; tail -n 11 "$OUT/fp8.log"
