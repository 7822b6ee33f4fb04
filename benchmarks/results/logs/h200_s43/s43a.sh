#!/usr/bin/env bash
# s43a: v130 / v130b against main. FlashMLA keeps Q's RoPE sub-tile in registers; ours read every k-step of Q.K^T
# from shared memory (SS). s41b: Q.K^T is 36% of a sustained b132 step's energy and follows its operand bytes (4 KB
# a k-step, half of them Q). v130 (exp-v130-q-registers): Q's last sub-tile (RoPE) in warpgroup 0's registers, its
# 4 k-steps RS; v130b: the last two sub-tiles (8 of 36 k-steps). Both 0 spills at 240/240/24.
# Predicted: Q.K^T's shared-memory operand bytes -5.6% (v130) / -11% (v130b); sustained b132 energy -1..-2% /
# -2..-4%; bursty h128/q1 and q2 0..-2% / -1..-3% (shared memory paces the block, s22b); h64, h32 level.
# Setup: bash benchmarks/variant_trees.sh .variants/s43/trees main:main-nocheck exp-v130-q-registers:V130
#        exp-v130b-q-registers-2:V130B; carry .variants/s43 and .peers.
set -uo pipefail
T=.variants/s43/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD ROOT=$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b64/s2048/h16/q2
TESTS=tests/test_kernel_gpu.py PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 330 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V130 $T/V130B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 12 "$OUT/p.log"
n=0
for t in main-nocheck V130B V130 main-nocheck V130B; do
  n=$((n + 1))
  names=mla_backend; [ $n = 1 ] && names=mla_backend,flashmla
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 50 \
      python3 benchmarks/power_probe.py --peers $ROOT/.peers --names $names --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
