#!/usr/bin/env bash
# s48a: v148 (branch exp-v148-seesaw-release-order) against main, 16-bit GPU tests on V148 first. v148 is the 16-bit
# seesaw for queries of several 64-row tiles, rebuilt with FlashMLA's load protocol: no producer warpgroup; each
# stage refilled in two groups by the consumer thread that saw the group's last reader finish (A: 0-3 after
# warpgroup 0's P_A V_A, 4-8 after warpgroup 1's; B: 4-7 after warpgroup 1's P_B V_B, 8 and 0-3 after warpgroup 0's),
# each Q.K^T reading its stage's earlier group first (B's in the order 4-7, 8, 0-3). v86 (s32) had the same consumers
# (3% ahead of main without loads) but a producer warpgroup issuing in a fixed order, and lost 27% to its loads.
# Predicted: if the producer's in-order issue was what loads cost v86, the 128-head rows -3..-6% (v86-noload's
# margin plus main's 4.6% load cost, less the seesaw's own loads); otherwise +10..+25% as v86.
# Trees: bash benchmarks/variant_trees.sh .variants/s48/trees main:main-nocheck exp-v148-seesaw-release-order:V148.
# Carry .variants/s48.
set -uo pipefail
T=.variants/s48/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=300 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 540 bash benchmarks/probe_variants.sh "$OUT/a" "$C" $T/main-nocheck $T/V148 > "$OUT/a.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|passed|failed|FAILED|ERROR|Error" "$OUT/a.log" | head -20; tail -n 12 "$OUT/a.log"
