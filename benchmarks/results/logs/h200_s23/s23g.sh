#!/usr/bin/env bash
# s23g: at v73c: every kernel GPU test (bf16 + fp8, memcheck included), the bf16 side by side, the fp8 grid, then a
# probe of v73c against main on the rows the combine change moves.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=$(cat .variants/commit)
timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py \
    > "$OUT/h200_gpu_tests_$C.log" 2>&1
echo "tests rc=$?: $(tail -n 1 "$OUT/h200_gpu_tests_$C.log")"
grep -E "^(FAILED|ERROR|SKIPPED)" "$OUT/h200_gpu_tests_$C.log" | head
timeout -s KILL 150 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit $C \
    --out-dir "$OUT/results" > "$OUT/h200_bench_$C.log" 2>&1
echo "bench rc=$?"
sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT/results/h200.md" 2>/dev/null | grep -E "b1/|b4/|b8/|b32/|b132|h128|Geomean"
timeout -s KILL 150 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit $C \
    --out-dir "$OUT/results" > "$OUT/h200_bench_fp8_$C.log" 2>&1
echo "fp8 bench rc=$?"
grep -E "Targets met|^\| b" "$OUT/results/h200_fp8.md" 2>/dev/null | head -9
mkdir -p "$OUT/probe"
PROBE_TIMEOUT=100 TESTS=none ROUNDS=2 timeout -s KILL 120 bash benchmarks/probe_variants.sh "$OUT/probe" \
    b16/s4096/h128/q1,b32/s1024/h16/q1,b4/s4096/h16/q1,b1/s32768/h128/q1 \
    .variants/trees/main-nocheck .variants/trees/v73c-nocheck > "$OUT/probe.log" 2>&1
echo "probe rc=$?"; tail -n 4 "$OUT/probe.log"
