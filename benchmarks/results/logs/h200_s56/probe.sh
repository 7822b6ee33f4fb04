#!/usr/bin/env bash
# The fifty-sixth session's probe calls (s56a-s56f, s56h): the device's missing nvidia-cutlass from .variants/s49, then
# probe_variants.sh with 2 interleaved rounds on CONFIGS for the named trees of .variants/s56/trees.
#   bash benchmarks/results/logs/h200_s56/probe.sh CONFIGS TREE...
set -uo pipefail
CONFIGS=$1
shift
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
ROUNDS=2 bash benchmarks/probe_variants.sh "$OUT" "$CONFIGS" "${@/#/.variants/s56/trees/}"
