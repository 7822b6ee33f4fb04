#!/usr/bin/env bash
# s56h: v182 / v182b (the TMA producer issues V0's refill 400 / 800 cycles after V0 is freed, so that the block's
# bytes land after the next Q.K^T instead of during it, spending part of the ~1,000 cycles of slack s56g measured)
# against main. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees main:MAIN-nocheck
#   exp-v182-refill-delay:V182 exp-v182b-refill-delay-800:V182B; carry .variants/s56, .variants/s49.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s56/trees
ROUNDS=2 bash benchmarks/probe_variants.sh "$OUT" b128/s4096/h128/q1,b128/s4096/h128/q2,b64/s4096/h64/q2 \
  $T/MAIN-nocheck $T/V182 $T/V182B
