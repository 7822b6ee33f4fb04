#!/usr/bin/env bash
# s41d: v123 against main. v123 (branch exp-v123-zero-folded-rows): the folded tile's Q8 rows 32-63 are zeros, so
# their Q.K^T multiplies zeros (s41c: -3.5% of a sustained h32 step's energy, -2% bursty, at the same instructions);
# warps 0, 1 hand warps 2, 3 the block's k-step 1 scores (masked) and their rows' k-step 0 maxima through 4.6 KB of
# shared memory (bar.arrive / bar.sync), so warps 2, 3's exponentials start ~60-100 cycles later. The unfolded SASS is
# main's. Predicted: folded bursty -1..+2% (the energy's -2% against the hand-over's latency), sustained -1..-3%;
# unfolded level. Setup: bash benchmarks/variant_trees.sh .variants/s41/trees db5a8b3:main-nocheck
# exp-v123-zero-folded-rows:V123; carry .variants/s41/trees and .variants/s41/wheels.
set -uo pipefail
T=.variants/s41/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b32/s4096/h32/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=300 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=90 ROUNDS=3 timeout -s KILL 480 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V123 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
for t in main-nocheck V123; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 \
      python3 benchmarks/power_probe.py --kv fp8 --names mla_backend --configs b128/s4096/h32/q1,b64/s2048/h16/q2 \
      --seconds 3 > "$OUT/power_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_$t.log")
done
