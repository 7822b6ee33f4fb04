#!/usr/bin/env bash
# s40g: V121 (branch exp-v121-wg1-scores): in the folded 64-row fp8 tile warpgroup 1 (idle most of a folded block)
# runs Q.K^T: the piece's first block's before its loop, block i + 1's in step i while warpgroup 0 runs block i's
# softmax; it masks S, takes each row's max and hands warpgroup 0 the k-step half its thread exponentiates (16 scores
# + 2 maxima a thread through a 9 KB buffer, scores_full / scores_empty mbarriers). Warpgroup 0's chain loses Q.K^T
# (s40e: -17.2% without it at h32) and the row max's shuffles, gains 18 shared loads. setmaxnreg 184 / 208 / 112 in
# the folded tile; the unfolded instantiation's SASS is main's. Predicted: h32 -5..-12%, b64/q2 -3..-8%, short
# contexts less; unfolded level. If its tests pass, its fp8 grid (so that a win can land from this call).
# Setup: bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck exp-v121-wg1-scores:V121
# (carry .variants/s40 and .peers).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=150 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 220 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck \
    $T/V121 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -12; tail -n 6 "$OUT/p.log"
grep -q "V121 tests rc=0" "$OUT/p.log" || exit 0
cd $T/V121
export MLA_BACKEND_CACHE=/tmp/ext-V121 PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 90 python3 benchmarks/bench_decode.py --fp8-grid --peers ../../../../.peers --card h200 \
    --commit "$(cat ../../V121.commit 2>/dev/null || echo V121)" --out-dir "$OUT/g" > "$OUT/grid.log" 2>&1
echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/h200_fp8.md | grep -E "^\| b|Targets"
rm -f "$OUT"/g/progress.log "$OUT"/g/supervisor-state.json
