#!/usr/bin/env bash
# s40b: (1) LAND (branch land-v116-unfolded, e790e13: v116 for the unfolded 64-row fp8 tile only, the folded tile's
# SASS main's but for two mbarrier inits): fp8 + scheduler GPU tests, and the rows over 32 against FlashMLA fp8
# (bench_decode, as h200_rows_over_32_fp8.md). Predicted: tests pass; h64 -1%, h128 -1.4%, q2 -2% against that file.
# (2) The cost of a request switch in the folded tile: b128/s4096/h32 is ~2 pieces a CTA; the same tokens as b256 x
# 2048 (~3 pieces), b64 x 8192 (~1.5), b32 x 16384 (~1.2). V117 (branch exp-v117-folded-q-one-pass): the folded
# tile's query in one pass (each row stored twice). Predicted: V117 -0.3..-1% at h32 (one global round trip less a
# switch), level at h64; the switch costs ~1-2 us a CTA (b256/s2048 slower than b32/s16384 by that much a piece).
# Setup: bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck land-v116-unfolded:LAND \
#     exp-v117-folded-q-one-pass:V117 (carry .variants/s40 and .peers).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b256/s2048/h32/q1,b128/s4096/h32/q1,b64/s8192/h32/q1,b32/s16384/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck \
    $T/LAND $T/V117 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
cd $T/LAND
export MLA_BACKEND_CACHE=/tmp/ext-LAND PYTHONPATH=/tmp/devsite:$PWD
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b64/s4096/h64/q2
timeout -s KILL 170 python3 benchmarks/bench_decode.py --configs $B --kv fp8 --peers ../../../../.peers \
    --card h200_rows_over_32 --commit e790e13 --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\| b" "$OUT/bench/"*.md | head -7
