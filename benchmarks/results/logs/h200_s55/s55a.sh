#!/usr/bin/env bash
# s55a: v170 (exp-v170-uniform-roles: each kernel's warp role read from lane 0 by warp_uniform_group, so ptxas keeps
# the role branches warp-uniform and the wgmma descriptors and mbarrier addresses in uniform registers; 64-row 16-bit
# SASS 16,422 -> 12,630 lines, R2UR 221 -> 29, WARPSYNC 156 -> 0) and REVIEW (copy_query_rows_review.patch) against
# main (c793697), their kernel tests, V170's fp8 kernel tests, 2 rounds. Trees .variants/s59/trees/{MAIN-nocheck,
# V170,REVIEW} (carry .variants/s59 and .variants/s49).
# Predicted: V170 128-head rows level..-1.5% (the descriptors' vector work sits beside Q.K^T's pipe time), narrow
# rows level..-1%; REVIEW level (64-row SASS identical; narrow reordered).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s59/trees
ROUNDS=2 PROBE_TEST_TIMEOUT=200 bash benchmarks/probe_variants.sh "$OUT/r" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h16/q1,b8/s8192/h16/q1,b1/s32768/h16/q1 \
    $T/MAIN-nocheck $T/V170 $T/REVIEW 2>&1 | tail -16
cd $T/V170 && MLA_BACKEND_CACHE=/tmp/ext-V170 PYTHONPATH=$PWD:$PYTHONPATH timeout -s KILL 200 \
    python3 -m pytest -x -q -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py > "$OUT/fp8_tests_V170.log" 2>&1
echo "V170 fp8 tests rc=$?: $(tail -n 1 "$OUT/fp8_tests_V170.log")"
