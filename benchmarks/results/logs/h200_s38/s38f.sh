#!/usr/bin/env bash
# s38f: v111 (P8's high part by integer rounding of the mantissa, the low part its exact remainder: two conversions
# a pair of values instead of v108's four) and v111b (v111 with half the exponentials on the FMA pipe instead of a
# quarter) against main. fp8 GPU tests of both, then probe_decode --kv fp8 in two interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v111-integer-high-part:V111 \
#       exp-v111b-half-exp-on-fma:V111B && mv .variants/s38/trees/main .variants/s38/trees/main-nocheck
# (carry .variants/s38). Predicted, if the conversion unit (MUFU and F2FP, 16 a clock an SM) paces the chain: V111
# -4..-7% on the 64-row rows; V111B a further -1..-3%.
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b16/s4096/h128/q1,b96/s2048/h16/q2,b64/s2048/h16/q2
C=$C,b1/s32768/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V111 $T/V111B \
    > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
