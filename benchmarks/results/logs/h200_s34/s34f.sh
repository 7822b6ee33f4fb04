#!/usr/bin/env bash
# s34f: v94 (the fp8 column split's warpgroup 0 leaves its half of P.V in flight under the next block's Q.K^T, whose
# wait retires it) against main (a2f788e). fp8 kernel tests on V94 (memcheck included), then 3 interleaved probe
# rounds of the column split's rows (16 rows, up to 8 requests). Carry .variants/s34 (trees main-nocheck, V94).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h16/q1,b2/s16384/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b8/s32768/h16/q1,b8/s2048/h8/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=80 ROUNDS=3 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V94 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 7 "$OUT/fp8.log"
