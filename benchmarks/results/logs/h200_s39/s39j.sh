#!/usr/bin/env bash
# s39j: v115 against main (f601679, whose kernels are 1b33b79's): in both fp8 64-row instantiations the online softmax
# keeps its running max while a block's max stays within 0.75 (log2) of it (rescale exactly 1, P up to 1.68, 2^8 P up
# to 431 < e4m3's 448), and O's rescale (128 FMUL a thread) is skipped by a warp vote when every factor is 1.
# s39a/s39g: those FMULs are ~4% (unfolded) and ~5.5% (folded) of warpgroup 0's block, on its chain. fp8 GPU tests
# of V115, then probe_decode --kv fp8, two interleaved rounds. Setup here:
#   bash benchmarks/variant_trees.sh .variants/s39/trees main:main-nocheck exp-v115-lazy-rescale:V115
#   (carry .variants/s39)
# Predicted: -3..-5% on every 17+-row config if the vote's branch is free; +1..+3% if it costs what v24a's branch
# before the 16-bit P.V did (6%).
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b64/s4096/h64/q2
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V115 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
