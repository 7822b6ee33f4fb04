#!/usr/bin/env bash
# s45d: v143 (exp-v143-vector-hand-over) against main (b9d4c56), fp8 tests (memcheck included). s45c's D1 (main's
# work split, but 2.5x the transposer's shared-memory instructions for the same wavefronts) ran +4.6%: the block's
# MIO instructions cost time whatever their bytes. v143: P8's hand-over between the 64-row fp8 tile's warpgroups in
# 16-byte quads and one 8-byte pair: warpgroup 0 stores 5 (unfolded) / 3 (folded) instead of 18 / 10, loads 1 instead
# of 4 (folded), warpgroup 1 loads 5 / 3 instead of 18 / 10 (SASS counted here), conflict-free (a quarter warp's
# 128 contiguous bytes). 0 spills, no C75xx. Predicted (from D1's ~2.4% a 100 warp instructions a block): folded
# h32 -1..-2%, q2 -0.5..-1.5%; unfolded h64 / h128 -0.5..-1.5% (its hand-over is on warpgroup 0's chain). Carry
# .variants/s45.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1,b64/s4096/h64/q2
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/V143 > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 7 "$OUT/f.log"
