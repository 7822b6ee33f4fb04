#!/usr/bin/env bash
# s34d: v93 (a part's first page read alongside its first request's length; Q loaded without waiting for the
# length) against main (a7ea5f1): bf16 and fp8 kernel tests on V93, then 2 interleaved probe rounds of the small
# batches where a CTA's start is on the critical path (fp8, then bf16), b128/s4096/h16 as the control.
# Carry .variants/s34 (trees main = a7ea5f1, V93 = branch exp-v93-early-first-page; the cutlass wheel).
set -uo pipefail
T=.variants/s34/trees
C8=b32/s1024/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b16/s2048/h16/q1,b4/s4096/h32/q1
C8=$C8,b128/s4096/h16/q1
C16=b32/s1024/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b128/s4096/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=220 \
    PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C8" $T/main-nocheck \
    $T/V93 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 8 "$OUT/fp8.log"
TESTS=none PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C16" \
    $T/main-nocheck $T/V93 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; tail -n 6 "$OUT/bf16.log"
