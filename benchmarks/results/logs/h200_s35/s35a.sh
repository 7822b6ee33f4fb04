#!/usr/bin/env bash
# s35a (prepared in the thirty-fourth session, not run): v98 (each fp8 producer waits for its part's first block to
# land before copying the next, so the first blocks of all parts share the copy rate; s34j's trace put the first
# block's landing at 3.77 µs of a b4/s4096 CTA's 8.67) against main. Before the call, here:
#   git checkout -b exp-v98-first-block-first main && git am benchmarks/results/logs/h200_s34/next/v98.patch
#   git checkout main && bash benchmarks/variant_trees.sh .variants/s35/trees main:main-nocheck exp-v98-first-block-first:V98
#   mkdir -p .variants/s35/wheels && pip download --no-deps nvidia-cutlass==4.2.0.0 -d .variants/s35/wheels
# Predicted: the column split's rows (b1/s32768, b4/s4096, b8/s8192 at 16 rows) -0.3..-0.6 µs, the block split's
# short rows (b32/s1024, b16/s2048, b4/s4096/h32 in row halves) -0.2..-0.4, the long rows level (+-0.5%).
set -uo pipefail
T=.variants/s35/trees
C=b4/s4096/h16/q1,b1/s32768/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b16/s2048/h16/q1,b4/s4096/h32/q1
C=$C,b128/s4096/h16/q1,b128/s4096/h32/q1,b64/s16384/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V98 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 10 "$OUT/fp8.log"
