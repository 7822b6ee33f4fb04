#!/usr/bin/env bash
# s38a: v108 (P8's parts through f16x2), v109 (the 64-row fp8 kernel's consumers split each block by tokens: each
# warpgroup runs Q.K^T, the softmax and P8 of 32 tokens, the halves' max and P8 exchanged through shared memory)
# and v109b (v109 with v108's packing) against main. fp8 GPU tests of the three, then probe_decode --kv fp8 in two
# interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v108-on-main:V108 \
#       exp-v109-token-halves:V109 exp-v109b-token-halves-f16:V109B
#   mkdir -p .variants/s38/wheels && cp .variants/s36/wheels/nvidia_cutlass*.whl .variants/s38/wheels/
# (carry .variants/s38). Predictions: kernels/PERF_NOTES.md, thirty-eighth session.
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b16/s4096/h128/q1,b96/s2048/h16/q2,b64/s2048/h16/q2,b1/s32768/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main $T/V108 $T/V109 $T/V109B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED" "$OUT/p.log" | head -20; tail -n 9 "$OUT/p.log"
