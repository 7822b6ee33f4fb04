#!/usr/bin/env bash
# s39b: v113 (at most 32 query rows: the 64-row fp8 kernel's rows 32-63 repeat rows 0-31 and carry P8's low part, so
# each k-step of P.V is one m64n256k32 for both parts, and the tile's halves are added once a request) against main.
# fp8 GPU tests of V113 (main-nocheck skips them), then probe_decode --kv fp8 in two interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s39/trees main:main-nocheck exp-v113-low-part-rows:V113
#   (carry .variants/s39: the trees and the cutlass wheel)
# Predicted (PERF_NOTES.md, thirty-ninth session): 17-32 rows -15..-20% (P.V's tensor time a block 1,024 -> 512
# cycles, the hand-over 18 -> 10 words); b128/s4096/h32 117.7 -> 94-100 us; 64+ rows unchanged (same SASS).
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b96/s2048/h16/q2,b128/s1024/h32/q1,b32/s4096/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V113 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 9 "$OUT/p.log"
