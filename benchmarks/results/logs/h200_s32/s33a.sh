#!/usr/bin/env bash
# s33a (prepared in the thirty-second session, not yet run): what v86's loads cost. One call (carry .variants/s33;
# ~7 min). Trees (`benchmarks/variant_trees.sh .variants/s33/trees exp-v87a-no-gate:V87A-nocheck
# exp-v88-consumer-tma:V88 exp-v87a-trace:V87A-trace-nocheck`, main-nocheck = main's kernels; the noload twins by
# the edit in this folder's README):
#   V88: v87a without a producer warpgroup (256 threads; each group's last reader loads the block two places later
#        into its stage by TMA from its warpgroup's thread 0), kernel tests first;
#   V88-noload, V87A-trace(-noload): noload twins, and v87a's phase trace (cycles a pair, CTA (0, 0)) with and
#        without loads, printed under MLA_TRACE_PHASES=1.
# Predicted (PERF_NOTES, thirty-second session): if the producer hop and its in-order issue are what loads cost the
# seesaw, V88 recovers most of v87a's 277 -> ~235-245 µs at b128/s4096/h128/q1 (V88-noload ~ v86-noload 227); if
# not, V88 ~ v87a and the trace says which phase grows with loads.
bash benchmarks/results/logs/h200_s32/probe_kit.sh main-nocheck V87A-nocheck V88 V88-noload-nocheck \
    V87A-trace-nocheck V87A-trace-noload-nocheck
