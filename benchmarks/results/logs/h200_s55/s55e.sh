#!/usr/bin/env bash
# s55e: two refuted experiments whose loss was a branch in the block or request loop, re-run on v170, where the role
# branches are warp-uniform and ptxas no longer guards the loop's collectives: V171 = v168 (the next request's Q copies
# after a piece's last block, both warpgroups; branch exp-v171-v168-on-v170) and V172 = v159 (the narrow kernel's row
# scales and LSE under the piece's last P.V; exp-v172-v159-on-v170), against main (554a130, v170's kernels), their
# kernel tests, 2 rounds; then s55d (the fp8 rows of v170). Carry .variants/s60, .variants/s59 and .variants/s49.
# Predicted: if the branches' cost went with the divergence, V171 h128 q1/q2 -0.3..-1%, b16/b1 level; V172 the small
# batches at h16 -0.2..-0.4 µs; otherwise both as before (+0.5..+1.5%).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s60/trees
ROUNDS=2 PROBE_TEST_TIMEOUT=200 bash benchmarks/probe_variants.sh "$OUT/e" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h16/q1,b8/s8192/h16/q1,b4/s4096/h16/q1,b32/s1024/h16/q1,b1/s32768/h16/q1 \
    $T/MAIN-nocheck $T/V171 $T/V172 2>&1 | tail -14
OUT="$OUT/d" bash benchmarks/results/logs/h200_s55/s55d.sh
