#!/usr/bin/env bash
# s42a: v126 against main. v126 (branch exp-v126-folded-lookahead): in the folded fp8 tile (17-32 rows) warpgroup 0
# issues block i + 1's Q.K^T (into a second score array) right after block i's row maxima, so the tensor pipe runs it
# under block i's exponentials, packing and hand-over (FA3's intra-warpgroup overlap); the piece's last block issues a
# stand-in Q.K^T on its own stage. setmaxnreg 232/168/104 for the folded tile (the unfolded tile's SASS is main's).
# Predicted: folded h32 -6..-15% if Q.K^T hides under the exponentials; level..+5% if its shared-memory operand
# traffic slows them as in the seesaws (v80, v121). Unfolded (h64) level.
# Setup: bash benchmarks/variant_trees.sh .variants/s42/trees 4d48e17:main-nocheck exp-v126-folded-lookahead:V126;
# carry .variants/s42/trees and .variants/s42/wheels.
set -uo pipefail
T=.variants/s42/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b32/s4096/h32/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=300 PROBE_ARGS="--kv fp8" \
    PROBE_TIMEOUT=90 ROUNDS=3 timeout -s KILL 470 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V126 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
for t in main-nocheck V126; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 45 \
      python3 benchmarks/power_probe.py --kv fp8 --names mla_backend --configs b128/s4096/h32/q1 \
      --seconds 3 > "$OUT/power_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_$t.log")
done
