#!/usr/bin/env bash
# s33e: v91 (branch fp8-row-halves: row-halves plans where the batch is small, the 32-row fp8 kernel reading the
# plan's mode) against main. One call from the repository root, carrying .variants/s34 (trees:
# `benchmarks/variant_trees.sh .variants/s34/trees main:main-nocheck fp8-row-halves:V91`, the cutlass wheel in
# wheels/). V91's bf16 and fp8 kernel GPU tests (memcheck included), then 3 interleaved `--kv fp8` probe rounds.
set -uo pipefail
T=.variants/s34/trees
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b32/s1024/h32/q1,b32/s4096/h32/q1
C=$C,b32/s8192/h32/q1,b64/s2048/h16/q2,b64/s4096/h32/q1,b128/s1024/h32/q1,b8/s32768/h32/q1,b128/s4096/h32/q1
C=$C,b4/s4096/h16/q2,b128/s4096/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=240 \
    PROBE_TIMEOUT=80 ROUNDS=3 timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck \
    $T/V91 > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/fp8.log" | head -8; tail -n 15 "$OUT/fp8.log"
