#!/usr/bin/env bash
# s24f: at HEAD (fp8 Split::kBlocks with the descriptor offsets; bf16 kernels and combine machine code as 943e90d):
# every kernel GPU test (memcheck included, -rs names the skips), the fp8 grid, the bf16 side by side.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=$(cat .variants/commit)
timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py \
    > "$OUT/h200_gpu_tests_$C.log" 2>&1
echo "tests rc=$?: $(tail -n 1 "$OUT/h200_gpu_tests_$C.log")"
grep -E "^(FAILED|ERROR)" "$OUT/h200_gpu_tests_$C.log" | head -5; grep -c "^SKIPPED" "$OUT/h200_gpu_tests_$C.log"
timeout -s KILL 150 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r8 > "$OUT/h200_bench_fp8_$C.log" 2>&1
echo "fp8 bench rc=$?"; mkdir -p "$OUT/fp8"; cp /tmp/r8/h200_fp8.json /tmp/r8/h200_fp8.md "$OUT/fp8/"
grep -E "Targets met|^\| b" /tmp/r8/h200_fp8.md 2>/dev/null | head -9
timeout -s KILL 200 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r16 > "$OUT/h200_bench_$C.log" 2>&1
echo "bench rc=$?"; mkdir -p "$OUT/bf16"; cp /tmp/r16/h200.json /tmp/r16/h200.md "$OUT/bf16/"
sed -n '/Ours vs the best peer/,/Geomean/p' /tmp/r16/h200.md | grep -E "b1/|b4/|b8/|b32/|b132|h128|Geomean"
