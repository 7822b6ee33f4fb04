#!/usr/bin/env bash
# s40f: V120 (branch exp-v120-folded-three-raw, 64e9515): the folded 64-row fp8 tile on StageRing<3, 1> (three raw
# stages, one Vt stage: 213 KB) instead of <2, 2>, so one more block's copy is in flight (s40e: the loads cost the
# folded tile 13.6%, the transpose 3.7%); the producer transposes block n - 2 after copying block n, and a block's
# transpose now waits for both warpgroups' P.V of the block before (it has warpgroup 0's softmax to run in). V120B
# (exp-v120b-three-raw-both, f3ba7b4): the same for the unfolded tile (its producer spills 4 bytes). Predicted: h32
# -3..+3% (deeper prefetch against the transpose squeezed into the softmax), q2 the same; unfolded (V120B) +-2%.
# Then V120B's fp8 grid and rows over 32 (the folded instantiation is V120's; so that a win can land from this call).
# Setup: bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck exp-v120-folded-three-raw:V120 \
#     exp-v120b-three-raw-both:V120B (carry .variants/s40 and .peers).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=200 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck \
    $T/V120 $T/V120B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
cd $T/V120B
export MLA_BACKEND_CACHE=/tmp/ext-V120B PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 120 python3 benchmarks/bench_decode.py --fp8-grid --peers ../../../../.peers --card h200 \
    --commit f3ba7b4 --out-dir "$OUT/g" > "$OUT/grid.log" 2>&1
echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/h200_fp8.md | grep -E "^\| b|Targets"
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b64/s4096/h64/q2
timeout -s KILL 110 python3 benchmarks/bench_decode.py --configs $B --kv fp8 --peers ../../../../.peers \
    --card h200_rows_over_32 --commit f3ba7b4 --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\| b" "$OUT/bench/"*.md | head -6
