#!/usr/bin/env bash
# s40c: V118 (branch exp-v118-copy-after-softmax, f3d7792): in the unfolded 64-row fp8 tile the producer also waits
# for warpgroup 0's softmax of block n - 2 before copying block n into the raw stage that block held (v116 gated only
# the transpose; the copy's 18 LDGSTS a thread went into the MIO queue right when Q.K^T freed the stage, i.e. as the
# row-max shuffles start). The folded tile's SASS is main's. Predicted: h64/h128/q2 -0.5..-2% if the shuffles were
# still queued behind the copies, +1..+3% if the later copy exposes DRAM latency (one block, ~1.9 us, to land it).
# Also, so that a win can land from this call: V118's fp8 + scheduler tests and the rows over 32 against FlashMLA fp8.
# Setup: bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck exp-v118-copy-after-softmax:V118
# (carry .variants/s40 and .peers).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b64/s4096/h64/q2,b1/s32768/h128/q1,b128/s4096/h32/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck \
    $T/V118 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
cd $T/V118
export MLA_BACKEND_CACHE=/tmp/ext-V118 PYTHONPATH=/tmp/devsite:$PWD
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b64/s4096/h64/q2
timeout -s KILL 170 python3 benchmarks/bench_decode.py --configs $B --kv fp8 --peers ../../../../.peers \
    --card h200_rows_over_32 --commit f3d7792 --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\| b" "$OUT/bench/"*.md | head -7
