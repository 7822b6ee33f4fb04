#!/usr/bin/env bash
# s39c: v113b against v113 (s39b) and main. v113b: with at most 32 query rows, warps w and w + 2 of the 64-row fp8
# kernel's warpgroup 0 hold the same rows (v113); both take the row max over the block's 64 tokens, but each only the
# exponentials, row sum and P8 packing of one k-step (32 tokens), and the pair trades parts through the hand-over
# buffer (one 128-thread named barrier). fp8 GPU tests of V113B, then probe_decode --kv fp8, two interleaved rounds.
# Setup here:
#   bash benchmarks/variant_trees.sh .variants/s39/trees main:main-nocheck exp-v113-low-part-rows:V113-nocheck \
#       exp-v113b-half-softmax:V113B          (carry .variants/s39: the trees and the cutlass wheel)
# Predicted for V113B against V113: -10..-15% on 17-32 rows; 64+ rows unchanged (same SASS).
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b96/s2048/h16/q2,b128/s1024/h32/q1,b32/s4096/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 520 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V113-nocheck $T/V113B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 9 "$OUT/p.log"
