#!/usr/bin/env bash
# s41a: v122 against main. v122 (branch exp-v122-tma-raw): the 64-row fp8 tile's raw stages filled by TMA (thread 0
# of the producer warpgroup issues one 128-byte x 64-token box a sub-tile, the raw layout sub-tile-major) instead of
# 18 cp.async a producer thread and block; the producer warpgroup only transposes. The 16-bit and 16-row fp8 kernels'
# SASS is main's (compared here). Predicted: folded (h32, b64/q2, b128/s1024/h32) -1..-4% (no LDGSTS in the MIO
# queue that warpgroup 0's row-max shuffles and the transposes use; the no-load knockout priced the loads at 13.6%),
# unfolded (h64, h128, b64/s4096/h64/q2) 0..-3%. Then the power probe (s40's prepared s41a, shortened): main and v122
# against FlashMLA fp8 sustained for 3 s a row with nvidia-smi sampling (clock under the 700 W cap).
# Setup: bash benchmarks/variant_trees.sh .variants/s41/trees db5a8b3:main-nocheck exp-v122-tma-raw:V122;
# the cutlass wheel in .variants/s41/wheels; carry .variants/s41 and .peers.
set -uo pipefail
T=.variants/s41/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
PEERS=$PWD/.peers
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
C=$C,b64/s4096/h64/q2,b16/s4096/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=300 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 480 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V122 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR|passed|failed" "$OUT/p.log" | head -20; tail -n 10 "$OUT/p.log"
for t in main-nocheck V122; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 \
      python3 benchmarks/power_probe.py --peers "$PEERS" --kv fp8 --names mla_backend,flashmla_fp8 \
      --configs b128/s4096/h32/q1,b128/s4096/h128/q1 --seconds 3 > "$OUT/power_$t.log" 2>&1
   echo "power $t rc=$?"; tail -n 6 "$OUT/power_$t.log")
done
