#!/usr/bin/env bash
# s45b: v141b (exp-v141b-split-transpose-lookahead) against main (65d5076), fp8 tests (memcheck included). s45a: v141
# (warpgroup 1 transposing columns 256-511 of block n before its wait for P) ran +4.8% at h32: its reads of block n
# came only after its P.V of block n - 1 retired (behind warpgroup 0's Q.K^T of block n in the tensor pipe), so
# the raw stage's release, and the copy of block n + 2, moved later, and its loads and stores fell in warpgroup 0's
# softmax window (the MIO contention of s39k). v141b: warpgroup 1 transposes block n + 1's columns right after
# issuing its P.V of block n (the piece's first block before its loop), i.e. beside warpgroup 0's Q.K^T of n + 1, the
# reads done before that Q.K^T retires. 0 spills, no C75xx, the QGMMAs stay in flight over the transpose (SASS read
# here); unfolded and narrow kernels unchanged. Predicted: folded h32 -1..-3% against main (+1..+3% if the Q.K^T
# window's shared-memory bandwidth is what the producer's transpose already uses up); unfolded level. Carry .variants/s45.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/V141B > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 6 "$OUT/f.log"
