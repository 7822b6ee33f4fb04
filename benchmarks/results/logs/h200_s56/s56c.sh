#!/usr/bin/env bash
# s56c: v176 (the TMA producer issues block n's refills only after block n-1's Q.K^T is done, so that their
# shared-memory writes land off Q.K^T's window) and v176b (V1 and RoPE refilled when freed, only V0's refill after
# block n-1's Q.K^T) against main 21e3fb4. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees
#   main:MAIN-nocheck exp-v176-refills-after-next-qk:V176 exp-v176b-v0-refill-after-next-qk:V176B;
# carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b64/s4096/h64/q2 \
  MAIN-nocheck V176 V176B
