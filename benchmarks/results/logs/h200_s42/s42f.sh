#!/usr/bin/env bash
# s42f: v128 against main. ncu (s39g) found every cp.async of the fp8 raw stages at 1.5x its ideal shared-memory
# wavefronts (6 a warp instead of 4: 448 a block instead of 288, 9% of the folded tile's), because a token row of 576
# bytes starts 64 bytes into a 128-byte line for every odd token. v128 (branch exp-v128-aligned-copies) copies a page
# of contiguous tokens by aligned lines (a token pair is nine lines; each quarter warp one line, split over at most
# two raw rows without a bank conflict; simulated here: 288 wavefronts a block); the 64-row fp8 tile's setmaxnreg
# 208/176/120 (at 184/112 its producer spilled 12 bytes in the tail path). V128B-nocheck: the copies with main's
# budgets (the spill), to tell the two apart.
# Predicted: folded h32 -2..-5%, the 16-row kernels (b128/s4096/h16 89% of the copy floor) -0..-2%, unfolded h64 -1..-3%.
# Setup: bash benchmarks/variant_trees.sh .variants/s42/trees3 4d48e17:main-nocheck exp-v128-aligned-copies:V128
# exp-v128b-same-budgets:V128B-nocheck; carry .variants/s42/trees3 and .variants/s42/wheels.
set -uo pipefail
T=.variants/s42/trees3
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h16/q1,b64/s16384/h16/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=200 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=90 ROUNDS=3 timeout -s KILL 480 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V128 $T/V128B-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
