#!/usr/bin/env bash
# s55f: s55e's fp8 rows found v170 slower in the fp8 block-split kernel (b32/s1024/h16 +3.2%, b8/s8192/h16 +1.6%).
# F2 = main (d6aafc6) with that kernel's roles per thread again (mla_decode_narrow_fp8.cuh as c793697's and the narrow
# Fragment(group, first_row) from threadIdx: its SASS identical to c793697's); the column split keeps a uniform role
# branch. Against c793697 (.variants/s59/trees/MAIN-nocheck), F2's fp8 tests, 2 rounds, --kv fp8.
# Carry .variants/s61, .variants/s59, .variants/s49.
# Predicted: F2 level with c793697 on every fp8 row (block split identical; b1 via the column split level..-1%).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
ROUNDS=2 PROBE_ARGS="--kv fp8" TESTS=tests/test_kernel_fp8_gpu.py PROBE_TEST_TIMEOUT=200 \
    bash benchmarks/probe_variants.sh "$OUT" \
    b8/s8192/h16/q1,b32/s1024/h16/q1,b1/s32768/h16/q1,b128/s4096/h16/q1,b128/s4096/h32/q1,b4/s4096/h16/q1 \
    .variants/s59/trees/MAIN-nocheck .variants/s61/trees/F2 2>&1 | tail -9
