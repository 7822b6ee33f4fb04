#!/usr/bin/env bash
# s34g: v95 (v93's early first page and unconditional Q load in the 64-row kernel: TMA and widening producers)
# against main (ebeec1a). bf16 + fp8 kernel tests on V95 (both memcheck tests), then 2 interleaved bf16 probe rounds
# of the 64-row kernel's rows. Carry .variants/s34 (trees main-nocheck, V95).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h128/q1,b8/s1024/h128/q1,b16/s4096/h128/q1,b4/s4096/h64/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
C=$C,b128/s4096/h128/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=220 PROBE_TIMEOUT=100 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C" $T/main-nocheck $T/V95 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/bf16.log" | head -8; tail -n 8 "$OUT/bf16.log"
