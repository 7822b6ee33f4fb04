#!/usr/bin/env bash
# s28d (prepared in the twenty-seventh session; replaces ../h200_s26/s27b.sh): the fp8 64-row producer variants
# against main's v82, each tree's fp8 GPU tests (~55 s a tree), then 2 interleaved probe rounds on the fp8 path, and
# main's bf16 times for reference. Local first: bash benchmarks/results/logs/h200_s27/s28prep.sh. Carry .variants.
# ~7 min. Predictions in kernels/PERF_NOTES.md (v82b, v82c, v82d, v82cd).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h64/q1,b128/s4096/h128/q1,b64/s2048/h64/q2,b1/s32768/h128/q1,b16/s4096/h128/q1
T=.variants/trees
mkdir -p "$OUT/p"
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V82B $T/V82C $T/V82D \
    $T/V82CD > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 8 "$OUT/p.log"
timeout -s KILL 60 python3 benchmarks/probe_decode.py --configs $C > "$OUT/bf16.log" 2>&1; grep -E "^b" "$OUT/bf16.log"
