#!/usr/bin/env bash
# s54a (prepared in s53, not run): v166 (load_q by whole rows, patches/v166_q_rows_by_warp.patch) against main, with
# v166's 16-bit kernel tests, 3 interleaved probe rounds. Make the trees here first (they travel as .variants/s54):
#   rm -rf .variants/s54 && mkdir -p .variants/s54/trees/MAIN-nocheck .variants/s54/trees/V166
#   git archive HEAD | tar -x -C .variants/s54/trees/MAIN-nocheck
#   git archive HEAD | tar -x -C .variants/s54/trees/V166
#   patch -d .variants/s54/trees/V166 -p1 < benchmarks/results/logs/h200_s53/patches/v166_q_rows_by_warp.patch
#   for t in .variants/s54/trees/*; do rm -rf $t/benchmarks/results $t/docs $t/integration_tests; done
#   pip download --no-deps nvidia-cutlass==4.2.0.0 -d .variants/s49/wheels   (the device has no CUTLASS)
# then run on the device: bash benchmarks/results/logs/h200_s53/s54a.sh (carry .variants/s54 and .variants/s49).
# ~3 minutes.
# Predicted (PERF_NOTES, fifty-third session): h128/q1 and q2 -0.3..-1%, b132 -0.2..-0.5%, b16 and b1 at 128 heads
# 0..-2%, h64 level..-1%.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s54/trees
ROUNDS=3 PROBE_TEST_TIMEOUT=300 bash benchmarks/probe_variants.sh "$OUT/r" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1 \
    $T/MAIN-nocheck $T/V166 2>&1 | tail -9
