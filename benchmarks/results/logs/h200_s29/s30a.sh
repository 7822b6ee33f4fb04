#!/usr/bin/env bash
# s30a (prepared in the twenty-ninth session, not yet run): v83d (exp-v83d-combine-whole-rows: the eight-warp combine
# CTA merges whole rows once b x rows >= 256, 128-column slices below) against main: V83D's bf16/fp16 and fp8 kernel
# GPU tests with the memcheck test (a whole-row case added), then 2 interleaved probe rounds on s29e's configs.
# Predicted from s29e's v83a column: b8/s1024/h64/q1, b8/s1024/h16/q4, b1/s1024/h128/q4 -16% (23.5 -> ~19.7 us),
# b4/s4096/h64 -9%, b8/s1024/h128/q1 -0.5%, and the rows under 256 (b1/h128, b1/h16, b4/h16, b8/h16) unchanged
# (main's code path). Trees: `bash benchmarks/variant_trees.sh .variants/trees main:main-nocheck
# exp-v83d-combine-whole-rows:V83D` (local; done). Carry .variants. ~7 min. Merge if the tests pass and no row is
# slower than main beyond noise.
C=b8/s1024/h64/q1,b8/s1024/h16/q4,b1/s1024/h128/q4,b8/s1024/h128/q1,b1/s4096/h128/q1,b1/s2048/h128/q1,\
b16/s1024/h128/q1,b4/s4096/h64/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b1/s32768/h16/q1,b4/s4096/h16/q1,\
b8/s8192/h16/q1,b32/s1024/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=330 PROBE_TIMEOUT=60 ROUNDS=2 \
    timeout -s KILL 580 bash benchmarks/probe_variants.sh "$OUT/p" "$C" .variants/trees/main-nocheck \
    .variants/trees/V83D > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 15 "$OUT/p.log"
