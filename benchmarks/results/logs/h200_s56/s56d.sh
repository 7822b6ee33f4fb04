#!/usr/bin/env bash
# s56d: v177 (the TMA producer prefetches the part's blocks into L2 with cp.async.bulk.prefetch.tensor, 2 blocks past
# the two stages) and v177c (6 blocks past) against main 21e3fb4; trees V177 = exp-v177-l2-prefetch,
# V177C = exp-v177c-l2-prefetch-4 (lookahead 6).  Trees: bash benchmarks/variant_trees.sh .variants/s56/trees
#   main:MAIN-nocheck exp-v177-l2-prefetch:V177 exp-v177c-l2-prefetch-4:V177C;
# carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b64/s4096/h64/q2 \
  MAIN-nocheck V177 V177C
