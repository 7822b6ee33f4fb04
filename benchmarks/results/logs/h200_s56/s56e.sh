#!/usr/bin/env bash
# s56e: how much the KV loads cost the TMA 64-row kernel now, and v178. NOLOAD-nocheck (exp-diag-noload-s56: the
# producer loads the part's first two blocks, then arrives on the full barriers without loading: the stages keep
# real bytes; outputs wrong by design) and V178 (exp-v178-qk-per-group-wait: Q.K^T commits each group's k-steps as
# soon as that group landed) and V179 (exp-v179-cp-async-all-tiles: KV by cp.async at every tile count, as the
# single-tile instantiation) against main 21e3fb4. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees
#   main:MAIN-nocheck exp-diag-noload-s56:NOLOAD-nocheck exp-v178-qk-per-group-wait:V178
#   exp-v179-cp-async-all-tiles:V179; carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b64/s4096/h64/q2 \
  MAIN-nocheck NOLOAD-nocheck V178 V179
