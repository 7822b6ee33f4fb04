#!/usr/bin/env bash
# s34h: v96 (the fp8 block split's request end: both warpgroups exchange halves, merge and store half of the output
# columns each, instead of warpgroup 1 handing all of O^T to warpgroup 0) against main (8779ab2). fp8 kernel tests
# on V96 (memcheck included), then 2 interleaved probe rounds of block-split rows. Carry .variants/s34.
set -uo pipefail
T=.variants/s34/trees
C=b32/s1024/h16/q1,b16/s2048/h16/q1,b128/s1024/h16/q1,b128/s4096/h16/q1,b64/s16384/h16/q1,b32/s4096/h16/q1
C=$C,b4/s4096/h32/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 480 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V96 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 8 "$OUT/fp8.log"
