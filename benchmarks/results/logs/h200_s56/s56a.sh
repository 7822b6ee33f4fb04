#!/usr/bin/env bash
# s56a: v173 (one full mbarrier per KV stage: warpgroup 0's landed wait one shared-memory round trip instead of
# three) and v174 (v173 + the next block's landing tested with mbarrier.test_wait under P V0, no wait before its
# Q K^T when it landed) against main 21e3fb4. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees
#   main:MAIN-nocheck exp-v173-one-full-barrier~1:V173 exp-v173-one-full-barrier:V174; carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q2 \
  MAIN-nocheck V173 V174
