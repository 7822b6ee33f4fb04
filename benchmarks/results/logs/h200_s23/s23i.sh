#!/usr/bin/env bash
# s23i: vkb (fp8 Split::kBlocks on the voted softmax) on current main: its fp8 GPU tests (memcheck included), two
# interleaved fp8 probe rounds against main, then the fp8 grid at its commit.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=$(cat .variants/commit)
timeout -s KILL 100 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    > "$OUT/h200_gpu_tests_fp8_$C.log" 2>&1
echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/h200_gpu_tests_fp8_$C.log")"
grep -E "^(FAILED|ERROR|SKIPPED)" "$OUT/h200_gpu_tests_fp8_$C.log" | head -5
mkdir -p "$OUT/probe"
PROBE_ARGS="--kv fp8" TESTS=none PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 110 bash benchmarks/probe_variants.sh "$OUT/probe" \
    b128/s4096/h16/q1,b64/s16384/h16/q1,b32/s1024/h16/q1,b128/s1024/h16/q1 \
    .variants/trees/main-nocheck .variants/trees/vkb > "$OUT/probe.log" 2>&1
echo "probe rc=$?"; tail -n 4 "$OUT/probe.log"
timeout -s KILL 100 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r8 > "$OUT/h200_bench_fp8_$C.log" 2>&1
echo "fp8 bench rc=$?"; mkdir -p "$OUT/fp8"; cp /tmp/r8/h200_fp8.json /tmp/r8/h200_fp8.md "$OUT/fp8/" 2>/dev/null
grep -E "Targets met|^\| b" /tmp/r8/h200_fp8.md 2>/dev/null | head -9
