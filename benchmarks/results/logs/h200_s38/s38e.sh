#!/usr/bin/env bash
# s38e: v110 (the 64-row fp8 kernel on FlashMLA's seesaw: each consumer warpgroup runs Q.K^T, the softmax and P8 of
# one block of a pair, the pair's row max and P8 exchanged, both halves of O from both blocks) against main. fp8 GPU
# tests of V110, then probe_decode --kv fp8 in two interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v110-seesaw:V110
#   mv .variants/s38/trees/main .variants/s38/trees/main-nocheck
# (carry .variants/s38). Predicted (s38d's trace: warpgroup 1 waits for P half of each block): -15..-30% on the
# 64-row rows (h128 232 -> 165-200, h32 118 -> 83-100, b96/q2 58 -> 45-50), the 16-row rows unchanged.
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b16/s4096/h128/q1,b96/s2048/h16/q2,b64/s2048/h16/q2
C=$C,b1/s32768/h128/q1,b64/s4096/h64/q2,b128/s1024/h32/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V110 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED" "$OUT/p.log" | head -20; tail -n 10 "$OUT/p.log"
