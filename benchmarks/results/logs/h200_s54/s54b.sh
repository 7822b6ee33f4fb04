#!/usr/bin/env bash
# s54b: V166 (as s54a ran it) against V167 (the row copy as copy_query_row, also in the narrow kernel's load_q) and
# V168 (V167 + the next request's Q copied after a piece's last block by both warpgroups), kernel tests of V167 and
# V168, 3 interleaved rounds. Trees (carry .variants/s55 and .variants/s49):
#   .variants/s55/trees/V166-nocheck = .variants/s54/trees/V166; V167, V168 = git archive of main (3909ccb) with
#   patches/v167_narrow_q_rows.patch, patches/v168_next_q_both_warpgroups.patch; benchmarks/results, docs,
#   integration_tests removed.
# Predicted: narrow rows (h16 q1) b1/b4/b8/b32 -0.3..-0.8 µs, b128/h16 level..-0.5%; 64-row rows V167 = V166 (SASS
# identical). V168: h128/q1 and q2 -0.4..-1.5%, b132 -0.2..-0.8%, b16 and b1 at h128 level (nothing to prefetch).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s55/trees
ROUNDS=3 PROBE_TEST_TIMEOUT=300 bash benchmarks/probe_variants.sh "$OUT/r" \
    b1/s32768/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b128/s4096/h16/q1,b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1 \
    $T/V166-nocheck $T/V167 $T/V168 2>&1 | tail -16
