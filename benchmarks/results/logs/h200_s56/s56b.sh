#!/usr/bin/env bash
# s56b: v175 (warpgroup 1's P.V1 of a block waits until warpgroup 0's next Q.K^T is done, within a piece, so that it
# fills warpgroup 0's next softmax on the tensor pipe) and v175b (the same wait on the next Q.K^T's issue: each warp of
# warpgroup 0 arrives after its commit) against main 21e3fb4. Trees: bash benchmarks/variant_trees.sh
#   .variants/s56/trees main:MAIN-nocheck exp-v175-pv1-behind-next-qk:V175 exp-v175b-pv1-behind-next-qk-issue:V175B;
# carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q2 \
  MAIN-nocheck V175 V175B
