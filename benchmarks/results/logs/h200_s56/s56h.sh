#!/usr/bin/env bash
# s56h: v182 / v182b (the TMA producer issues V0's refill 400 / 800 cycles after V0 is freed, so that the block's
# bytes land after the next Q.K^T instead of during it, spending part of the ~1,000 cycles of slack s56g measured)
# against main. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees main:MAIN-nocheck
#   exp-v182-refill-delay:V182 exp-v182b-refill-delay-800:V182B; carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b128/s4096/h128/q1,b128/s4096/h128/q2,b64/s4096/h64/q2 \
  MAIN-nocheck V182 V182B
