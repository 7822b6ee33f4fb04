#!/usr/bin/env bash
# s37c: v106 (exp-v106-fp8-qk-first): block i+1's Q.K^T issued before block i's P.V, so the softmax runs under P.V;
# P8 through shared memory in the wgmma layout, both warpgroups' P.V SS; O's rescale skipped when exactly 1.
# Why (s37b knockouts of v105c at b128/s4096/h128, 247.7 us): no Q.K^T -19%, no P.V -25%, no softmax -14%, no
# loads -8.5%, no transpose -3%: Q.K^T, the softmax and P.V ran in series (Q.K^T queued behind the P.V before it).
# Trees (here): variant_trees.sh .variants/s37/trees main:main-nocheck exp-v105-fp8-wide-qgmma:V105C
#   exp-v106-fp8-qk-first:V106. Carry .variants/s37 and .peers.
# Predicted (us, V105C -> V106): b128/s4096/h128 248 -> 160-185; h64 126 -> 85-95; h32 122.5 -> 85-95 (1.2x FlashMLA
# fp8 needs 94.6); b16/s4096/h128 42.6 -> 32-36; b96/s2048/h16/q2 60 -> 45-50. FlashMLA fp8 (s37b): h128 222.9,
# b16/h128 44.0, b1/s32768/h128 31.7, b64/s2048/h64/q2 66.3, h32 112.9.
set -uo pipefail
T=.variants/s37/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2
C=$C,b96/s2048/h16/q2,b128/s1024/h32/q1,b128/s4096/h16/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 420 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/V105C $T/V106 $T/main-nocheck \
    > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log"; tail -n 10 "$OUT/p.log"
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b128/s4096/h32/q1
(cd $T/V106 && MLA_BACKEND_CACHE=/tmp/ext-V106 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 150 python3 \
    benchmarks/bench_decode.py --configs $B --kv fp8 --peers ../../../../.peers --card h200 --commit v106 \
    --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1)
echo "bench rc=$?"; grep -E "^b|mla_backend |flashmla_fp8|geomean" "$OUT/bench.log"
