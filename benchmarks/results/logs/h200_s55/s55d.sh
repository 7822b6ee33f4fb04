#!/usr/bin/env bash
# s55d: s55a's trees with an fp8 KV cache: main (c793697) against V170, 2 rounds, no tests (V170's fp8 tests passed
# in s55a). Carry .variants/s59 and .variants/s49.
# Predicted: the fp8 narrow kernels (R2UR 306 -> 44, column split 72 -> 1) level..-1%; the fp8 64-row tile
# (WARPSYNC 146 -> 6) level..-1% at h64 and h128.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s59/trees
ROUNDS=2 PROBE_ARGS="--kv fp8" TESTS=none bash benchmarks/probe_variants.sh "$OUT" \
    b128/s4096/h16/q1,b128/s4096/h32/q1,b128/s4096/h64/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b128/s4096/h128/q1,b132/s8192/h128/q2 \
    $T/MAIN-nocheck $T/V170 2>&1 | tail -9
