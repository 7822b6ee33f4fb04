#!/usr/bin/env bash
# s34a: v92 (fp8 17-32 rows of batches up to 16 as row halves, the plan's part count telling the op) against main.
# Carry .variants/s34 (trees main-nocheck = bdb47dc, V92 = branch fp8-row-halves-v92; the cutlass wheel). fp8 kernel
# tests (memcheck included) on V92, then 2 interleaved probe rounds: where halves are taken (b <= 16, 32 rows), and
# controls that must not move (b32 and b128 at 32 rows: the row split; b32 at 16 rows).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b4/s4096/h16/q2,b8/s32768/h32/q1
C=$C,b16/s8192/h32/q1,b4/s32768/h32/q1,b32/s1024/h32/q1,b128/s4096/h32/q1,b32/s1024/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 540 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V92 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 14 "$OUT/fp8.log"
