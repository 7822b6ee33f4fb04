#!/usr/bin/env bash
# s24a: (1) v70e (v70's loop rotation with main's exact schedule) against main on three 128-head rows, two rounds;
# (2) the fp8 Split::kBlocks descriptor-offset branch: its fp8 GPU tests, then two fp8 probe rounds against main.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv > "$OUT/smi.txt"
mkdir -p "$OUT/v70e"
PROBE_TIMEOUT=100 ROUNDS=2 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/v70e" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b132/s8192/h128/q2 \
    .variants/trees/main-nocheck .variants/trees/V70E-nocheck > "$OUT/v70e.log" 2>&1
echo "v70e rc=$?"; tail -n 8 "$OUT/v70e.log"
cd .variants/trees/DSC
MLA_BACKEND_CACHE=/tmp/ext-DSC timeout -s KILL 120 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    > "$OUT/gpu_tests_fp8_dsc.log" 2>&1
echo "dsc fp8 tests rc=$?: $(tail -n 1 "$OUT/gpu_tests_fp8_dsc.log")"
grep -E "^(FAILED|ERROR|SKIPPED)" "$OUT/gpu_tests_fp8_dsc.log" | head -5
cd ../../..
mkdir -p "$OUT/dsc"
PROBE_ARGS="--kv fp8" TESTS=none PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/dsc" \
    b128/s4096/h16/q1,b64/s16384/h16/q1,b32/s1024/h16/q1,b128/s1024/h16/q1 \
    .variants/trees/main-nocheck .variants/trees/DSC > "$OUT/dsc.log" 2>&1
echo "dsc probe rc=$?"; tail -n 7 "$OUT/dsc.log"
