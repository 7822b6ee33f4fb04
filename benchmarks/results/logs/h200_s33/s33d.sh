#!/usr/bin/env bash
# s33d: 17-32 rows as two 16-row CTAs a part with the parts halved (v90: fp8 as v89h, bf16 on the 16-row swap-AB
# kernel), against main over batch and context, to find where it stops paying. One call from the repository root,
# carrying .variants/s34 (trees: `benchmarks/variant_trees.sh .variants/s34/trees main:main
# exp-v90-row-halves-bf16-too:V90`, the cutlass wheel in wheels/). V90's bf16 and fp8 kernel GPU tests (memcheck
# included), then 3 interleaved probe rounds on each cache.
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b32/s1024/h32/q1,b32/s4096/h32/q1
C=$C,b32/s8192/h32/q1,b64/s2048/h16/q2,b64/s4096/h32/q1,b128/s1024/h32/q1,b8/s32768/h32/q1,b128/s4096/h32/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 \
    PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main $T/V90 \
    > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED" "$OUT/fp8.log" | head -8; tail -n 12 "$OUT/fp8.log"
TESTS=none PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/bf16" "$C" \
    $T/main $T/V90 > "$OUT/bf16.log" 2>&1
echo "bf16 rc=$?"; tail -n 12 "$OUT/bf16.log"
