#!/usr/bin/env bash
# s35i: v102 (the copying fp8 producer, used by the block split and row halves, sends blocks 0 and 1 before waiting
# for block 0, so both consumer warpgroups' first blocks go out first) and v102b (waits for blocks 0 and 1) against
# main (cc5c6d3). fp8 kernel tests (memcheck included) on V102, then 2 interleaved fp8 probe rounds. Carry .variants.
# Predicted: b4/s4096 (2 blocks a part) -0.2..-0.6 us, b32/s1024 -0.1..-0.4, b2/b8 -0.1..-0.3, long rows level;
# v102b between main and v102.
set -uo pipefail
T=.variants/s35/trees
C=b4/s4096/h16/q1,b32/s1024/h16/q1,b8/s8192/h16/q1,b2/s16384/h16/q1,b16/s2048/h16/q1,b4/s4096/h32/q1
C=$C,b128/s4096/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 420 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V102 $T/V102B-nocheck \
    > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 7 "$OUT/fp8.log"
