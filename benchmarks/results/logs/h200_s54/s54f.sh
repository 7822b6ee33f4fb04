#!/usr/bin/env bash
# s54f: q_chunk through query_row (a query row's addresses written once, patches/qr_query_row_once.patch): the 16-bit
# kernels' SASS is unchanged, the fp8 kernels' changes (they index Q by chunk). The fp8 kernel tests on QR, then main
# (222a2cd) against QR with --kv fp8, 2 rounds. Trees: .variants/s57/trees/{MAIN-nocheck,QR} (git archive of main,
# QR with the patch; carry .variants/s57 and .variants/s49).
# Predicted: tests pass; fp8 rows level (the quantized Q load is a small share of a part's start).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=.variants/s57/trees
ROUNDS=2 PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" TESTS=tests/test_kernel_fp8_gpu.py \
    bash benchmarks/probe_variants.sh "$OUT/r" \
    b128/s4096/h16/q1,b128/s4096/h32/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b128/s4096/h128/q1 \
    $T/MAIN-nocheck $T/QR 2>&1 | tail -9
