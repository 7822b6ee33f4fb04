#!/usr/bin/env bash
# s38g: v112 (the 64-row fp8 kernel's softmax on the raw scores, the row scale and the 2^8 of P8 in exp2's FFMA, and
# the mask in its own instantiation: warpgroup 0's chain 668 -> 524 instructions a block on unmasked blocks) against
# main. fp8 GPU tests of V112, then probe_decode --kv fp8 in two interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v112-softmax-diet:V112
#   mv .variants/s38/trees/main .variants/s38/trees/main-nocheck
# (carry .variants/s38). Predicted: -3..-10% on the 64-row rows (v111/v111b: +48/+56 instructions cost ~5% each;
# v107's -198 bought 2%).
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b16/s4096/h128/q1,b96/s2048/h16/q2,b64/s2048/h16/q2
C=$C,b1/s32768/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V112 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
