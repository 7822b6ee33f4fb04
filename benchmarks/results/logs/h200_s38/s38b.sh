#!/usr/bin/env bash
# s38b: v108q (v108 + one per-row query quantization shared by the swap-AB and 64-row fp8 kernels: the 64-row
# kernel's SASS is v108's, the narrow kernels' request prologue ~400 instructions shorter) against v108 and main
# on the narrow (16-row and row-halves) fp8 rows, three interleaved rounds; fp8 GPU tests of V108Q. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v108-on-main:V108 \
#       exp-v108q-shared-q-quantization:V108Q
# (carry .variants/s38). Predicted: V108Q 0..-0.3 µs on the small-batch rows (b1, b4, b32), level elsewhere.
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h16/q1,b64/s16384/h16/q1,b32/s1024/h16/q1,b8/s8192/h16/q1,b4/s4096/h16/q1,b1/s32768/h16/q1
C=$C,b1/s32768/h32/q1,b128/s4096/h32/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=3 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V108-nocheck $T/V108Q \
    > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED" "$OUT/p.log" | head -20; tail -n 9 "$OUT/p.log"
