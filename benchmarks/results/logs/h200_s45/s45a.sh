#!/usr/bin/env bash
# s45a: v141 (exp-v141-split-transpose) and v142 (exp-v142-narrow-desc-plus) against main (65d5076), fp8 tests
# (memcheck included) on both. v141: in the folded fp8 tile (17-32 rows) warpgroup 1 transposes V's columns 256-511
# of its block itself, before its wait for P (it waits for P ~22% of its samples, s44g), and the producer only
# columns 0-255 (its transpose loop was ~30% of the samples); half-tile transposes in two passes of 4-byte loads
# (32 banks a pass), raw_empty counts warpgroup 1's warps, vt_empty only warpgroup 0's. 0 spills, no C75xx; the
# unfolded and narrow kernels' SASS unchanged. Predicted: folded h32 -2..-4%, q2 -1..-3%, unfolded h64 level.
# v142: narrow_fp8::issue_scores through desc_plus (the block split, 56 instructions fewer); predicted level..-0.5%
# on its rows (b128/s4096/h16, b8/s8192/h16, b32/s1024/h16), the others unchanged. Carry .variants/s45.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1,b128/s4096/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 420 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/V141 $T/V142 > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 9 "$OUT/f.log"
