#!/usr/bin/env bash
# s35d: v101 (the combine's loads past a row's last split predicated off instead of clamped to the last split)
# against main (3e0025f: v98 + v99 + v100a). Why: v100b (17 loads a warp instead of 8, s35c) lost 2 us at b8 where a
# warp has ~2 real splits, so the clamped duplicates may cost. Kernel tests (bf16 + fp8, memcheck) on V101, then 2
# interleaved probe rounds, fp8 then bf16. Carry .variants (trees main-nocheck, V101 = exp-v101-combine-predicated).
# Predicted: if the duplicates cost, b8 -0.5..-1.5 us (6 of 8 loads a lane clamped), b4 -0.3..-1 (4 of 8), b32 and
# b64/q2 (the one-warp-a-row combine, 4 a lane, ~2-4 splits) -0.2..-0.5, b1 -0.2, b128 level. If not: all level.
set -uo pipefail
T=.variants/s35/trees
C8=b4/s4096/h16/q1,b1/s32768/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b4/s4096/h32/q1,b128/s4096/h16/q1
C16=b4/s4096/h16/q1,b1/s32768/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b64/s2048/h16/q2,b1/s32768/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=220 \
    PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C8" $T/main-nocheck \
    $T/V101 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 6 "$OUT/fp8.log"
TESTS=none PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C16" \
    $T/main-nocheck $T/V101 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; tail -n 6 "$OUT/bf16.log"
