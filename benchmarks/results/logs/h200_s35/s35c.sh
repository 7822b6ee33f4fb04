#!/usr/bin/env bash
# s35c: v100a (BlockCursor::next in every producer; the next page read before the first-block wait, also in the
# 64-row kernel's TMA and fp8-widen producers) and v100b (v100a + the column-slice combine loading 17 splits a warp,
# one round trip for 132 splits) against main (3b135dc: v98 + v99). Kernel tests (bf16 + fp8, memcheck) on V100,
# then 2 interleaved probe rounds, fp8 then bf16. Carry .variants (trees main-nocheck, REFAC-nocheck =
# refactor-cursor-next, V100 = exp-v100b-combine-one-trip).
# Predicted: v100a -0..-0.3 us on the small batches (the page read overlaps the first block's wait), level elsewhere;
# v100b -1..-1.5 us at b1 (3 combine round trips -> 1) and b2, level elsewhere (<= 64 splits already took one).
set -uo pipefail
T=.variants/s35/trees
C8=b4/s4096/h16/q1,b1/s32768/h16/q1,b2/s16384/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b4/s4096/h32/q1
C8=$C8,b128/s4096/h16/q1
C16=b4/s4096/h16/q1,b1/s32768/h16/q1,b1/s32768/h128/q1,b2/s16384/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1
C16=$C16,b64/s2048/h16/q2,b128/s4096/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=220 \
    PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C8" $T/main-nocheck \
    $T/REFAC-nocheck $T/V100 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 8 "$OUT/fp8.log"
TESTS=none PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C16" \
    $T/main-nocheck $T/REFAC-nocheck $T/V100 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; tail -n 9 "$OUT/bf16.log"
