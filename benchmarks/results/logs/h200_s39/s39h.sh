#!/usr/bin/env bash
# s39h: v114 (the fp8 producer's cursor keeps its request's piece: the next block of a request reads only its page,
# not the request's length first) and v114b (v114 plus the page read as a per-thread value, so ptxas does not move it
# into a uniform register right after the load: its latency hides behind the transpose) against main (1de3d82).
# s39g: the folded kernel's producer stalls ~13% of its time on these two dependent global reads, and the folded
# kernel is 7% faster with the transpose knocked out (s39d). fp8 GPU tests of V114B, then probe_decode --kv fp8, two
# interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s39/trees main:main-nocheck exp-v114-piece-cursor:V114-nocheck \
#       exp-v114b-opaque-page:V114B           (carry .variants/s39)
# Predicted, V114B against main: b128/s4096/h32 -3..-7%, b64/s2048/h16/q2 -2..-4%, h64 and h128 0..-1% (their
# consumers set the pace: main's knockout -0.5..-1%), b1/s32768/h16 (the column split, same producer) +-1%;
# V114 about a third of V114B's gain.
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b96/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1,b1/s32768/h16/q1,b1/s32768/h32/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V114-nocheck $T/V114B \
    > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 9 "$OUT/p.log"
