#!/usr/bin/env bash
# s35b: v99 (v98's first block first in the three bf16 producers: the 64-row kernel's TMA and cp.async producers, the
# narrow kernel's producer) against main (ae35f3a, v98 merged). bf16 + fp8 kernel tests on V99, then 2 interleaved
# bf16 probe rounds over issue 9's grid. Carry .variants (trees main-nocheck, V99 = exp-v99-bf16-first-block-first).
# Predicted: small batches (b1..b32, h16) -0.3..-1 us; b128 rows -0.5..-1 us of 50-250 (level within 0.5%).
set -uo pipefail
T=.variants/s35/trees
C=b4/s4096/h16/q1,b1/s32768/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b1/s32768/h128/q1,b64/s2048/h16/q2
C=$C,b128/s4096/h16/q1,b128/s4096/h64/q1,b128/s4096/h128/q1,b132/s8192/h128/q2,b64/s16384/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=220 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 540 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C" $T/main-nocheck $T/V99 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/bf16.log" | head -8; tail -n 12 "$OUT/bf16.log"
