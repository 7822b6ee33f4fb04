#!/usr/bin/env bash
# s56c: v176 (the TMA producer issues block n's refills only after block n-1's Q.K^T is done, so that their
# shared-memory writes land off Q.K^T's window) and v176b (V1 and RoPE refilled when freed, only V0's refill after
# block n-1's Q.K^T) against main 21e3fb4. Trees: bash benchmarks/variant_trees.sh .variants/s56/trees
#   main:MAIN-nocheck exp-v176-refills-after-next-qk:V176 exp-v176b-v0-refill-after-next-qk:V176B;
# carry .variants/s56, .variants/s49.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s56/trees
ROUNDS=2 bash benchmarks/probe_variants.sh "$OUT" \
  b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b64/s4096/h64/q2 \
  $T/MAIN-nocheck $T/V176 $T/V176B
