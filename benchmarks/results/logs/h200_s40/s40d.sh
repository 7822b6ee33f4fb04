#!/usr/bin/env bash
# s40d: V119 (branch exp-v119-ldsm-transpose, 9ecaff4): the 64-row fp8 kernel's producer transposes V (kWideP) with
# ldmatrix.trans + 4 PRMT + stmatrix a round: 16 LDSM, 64 PRMT, 16 STSM a thread and block instead of 16 LDS.128,
# 128 PRMT, 16 STS.128 (same shared-memory wavefronts, conflict-free in a simulation here; the PRMT count in SASS
# 524 -> 268 over both instantiations). The swap-AB kernels' SASS is main's. Predicted: folded tile (producer-paced)
# h32 -1.5..-3%, b64/q2 -1..-2%; unfolded (warpgroup 0 paces it, transpose gated) 0..-1%. Then, so that a win can
# land from this call, V119's fp8 grid (issue 12's 10 targets) against FlashMLA fp8.
# Setup: bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck exp-v119-ldsm-transpose:V119
# (carry .variants/s40 and .peers).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck \
    $T/V119 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
cd $T/V119
export MLA_BACKEND_CACHE=/tmp/ext-V119 PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 200 python3 benchmarks/bench_decode.py --fp8-grid --peers ../../../../.peers --card h200 \
    --commit 9ecaff4 --out-dir "$OUT/g" > "$OUT/grid.log" 2>&1
echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/h200_fp8.md | head -30
