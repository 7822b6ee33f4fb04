#!/usr/bin/env bash
# s55b: main (c793697) and V170 each replayed alone for 3 s at the power cap (power_probe.py), alternated, 2 rounds;
# the trees of s55a (carry .variants/s59 and .variants/s49), run right after s55a on the same machine.
# Predicted: V170 -0.5..-2% energy a step at b132 and h128/q2 (fewer issued instructions a block).
export PYTHONPATH=/tmp/devsite
ls /tmp/devsite >/dev/null 2>&1 || python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl
T=$PWD/.variants/s59/trees
for r in 1 2; do for n in MAIN-nocheck V170; do
  (cd $T/$n && MLA_BACKEND_CACHE=/tmp/ext-$n PYTHONPATH=$PWD:/tmp/devsite timeout 120 python3 benchmarks/power_probe.py \
      --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q2 --seconds 3 2>&1 | tail -6 | sed "s/^/$n r$r: /")
done; done
