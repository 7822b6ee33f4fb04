#!/usr/bin/env bash
# s44d: v138 (exp-v138-own-probs-buffer) against main (670ca07): the 16-bit 64-row kernel's P in an 8 KB buffer of its
# own (225 KB of shared memory) instead of the stage's RoPE sub-tile, so warpgroup 0 frees the RoPE group right after
# Q.K^T and drops the named barrier it took before P.V0 on every block (tail blocks keep it for zero_v_tail); a
# `probs_free` mbarrier (warpgroup 1 after its P.V) guards the single buffer. Both instantiations; 0 spills, no C75xx.
# Predicted: 128-head rows -0.5..-1.5%, 33-64 rows (cp.async, one tile) 0..-1%; sustained energy level..-1%; its
# 16-bit tests with memcheck pass. Carry .variants/s44.
set -uo pipefail
T=.variants/s44/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b132/s8192/h128/q2,b128/s4096/h64/q1,b128/s4096/h32/q1,b64/s2048/h16/q2
TESTS="tests/test_kernel_gpu.py tests/test_tile_scheduler.py" PROBE_TEST_TIMEOUT=240 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 450 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V138 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 9 "$OUT/p.log"
n=0
for t in main-nocheck V138 main-nocheck V138; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 40 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
