#!/usr/bin/env bash
# s34b: v92b (row halves of batches up to 8 on the fp8 column split kernel, as 16 rows there) against v92 (the block
# split on each half); then every GPU test of V92 (bf16 and fp8 kernels, ops, memcheck). Carry .variants/s34 (trees
# V92 = branch fp8-row-halves-v92, V92b = exp-v92b-column-split-halves).
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b2/s16384/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b4/s4096/h16/q2,b8/s32768/h32/q1
C=$C,b4/s32768/h32/q1,b16/s4096/h32/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/V92 $T/V92b > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|build" "$OUT/fp8.log" | head -8; tail -n 9 "$OUT/fp8.log"
cd $T/V92 && MLA_BACKEND_CACHE=/tmp/ext-V92 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 240 \
    python3 -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/v92_all_gpu_tests.log" 2>&1
echo "V92 every GPU test rc=$?: $(tail -n 1 "$OUT/v92_all_gpu_tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/v92_all_gpu_tests.log" | head
