#!/usr/bin/env bash
# s41e: v124 against main. v124 (branch exp-v124-zero-padding-rows): the 16-bit 64-row kernel's Q rows past the
# tile's query rows zeroed once (they held stale or uninitialized bytes, multiplied by Q.K^T at full power; s41c:
# zero operand rows -3.5% of a sustained step's energy, -2% bursty in the fp8 tile). The cp.async (one-tile)
# instantiation's SASS is rescheduled by ptxas (difflib ratio 0.58), the TMA one barely (0.94). Predicted: 17-63-row
# bf16 rows (b128/s4096/h32, b64/s2048/h16/q2, b8/s8192/h32) -1..-2%; 64-row and 128-head rows level (+-1%, the
# reschedule). Setup: variant trees main-nocheck (db5a8b3) and V124; carry .variants/s41/trees and wheels.
set -uo pipefail
T=.variants/s41/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b8/s8192/h32/q1,b32/s1024/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
C=$C,b132/s8192/h128/q2
TESTS="tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=300 PROBE_TIMEOUT=120 ROUNDS=3 timeout -s KILL 540 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V124 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
