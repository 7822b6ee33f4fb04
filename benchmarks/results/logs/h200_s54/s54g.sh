#!/usr/bin/env bash
# s54g: v169 (patches/v169_per_warp_handover.patch: warpgroup 0's warps each arrive on probs_ready after their own P
# stores and proxy fence, probs_ready counting 4, instead of a warpgroup barrier and one arrival) against main
# (ea8a998), V169's kernel tests, 2 rounds. Trees .variants/s58/trees/{MAIN-nocheck,V169} (carry .variants/s58 and
# .variants/s49).
# Predicted: warpgroup 1 gets P a barrier's latency earlier (~50-100 of ~3,000 cycles a block): h128 q1/q2 and b132
# -0.3..-1%, b16/b1 at h128 and h64 level..-0.5%.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s58/trees
ROUNDS=2 PROBE_TEST_TIMEOUT=200 bash benchmarks/probe_variants.sh "$OUT/r" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1 \
    $T/MAIN-nocheck $T/V169 2>&1 | tail -8
