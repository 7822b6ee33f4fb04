#!/usr/bin/env bash
# s33c: fp8 17-32 rows as two 16-row block-split CTAs a part (v89), with the parts halved for 17-32 rows (v89h).
# One call from the repository root, carrying .variants/s34 (trees: `benchmarks/variant_trees.sh .variants/s34/trees
# main:main exp-v89-fp8-row-halves:V89 exp-v89h-fp8-row-halves-half-parts:V89h`, the cutlass wheel in wheels/).
# Each tree's fp8 GPU tests (memcheck included), then 3 interleaved `probe_decode --kv fp8` rounds.
set -uo pipefail
T=.variants/s34/trees
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b32/s1024/h32/q1,b8/s8192/h32/q1,b1/s32768/h32/q1,b128/s4096/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=80 ROUNDS=3 \
    timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main $T/V89 $T/V89h > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
