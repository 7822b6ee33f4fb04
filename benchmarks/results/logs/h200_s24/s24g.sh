#!/usr/bin/env bash
# s24g: v79 (warpgroup 1 rescales O on an early rescale barrier, before P's) against main, 3 probe rounds (its GPU
# tests ran in s24f, where its uncommitted change was in the tree by mistake: 2134 passed); then at HEAD (main):
# every kernel GPU test, the fp8 grid and the bf16 side by side for the results files.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
git status --short 2>/dev/null | head -3
mkdir -p "$OUT/p"
PROBE_TIMEOUT=100 ROUNDS=3 timeout -s KILL 240 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b64/s4096/h64/q2,b128/s4096/h32/q1 \
    .variants/trees/main-nocheck .variants/trees/V79-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 5 "$OUT/p.log"
C=$(cat .variants/commit)
timeout -s KILL 150 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py \
    > "$OUT/h200_gpu_tests_$C.log" 2>&1
echo "tests rc=$?: $(tail -n 1 "$OUT/h200_gpu_tests_$C.log")"
grep -E "^(FAILED|ERROR)" "$OUT/h200_gpu_tests_$C.log" | head -5
timeout -s KILL 100 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r8 > "$OUT/h200_bench_fp8_$C.log" 2>&1
echo "fp8 bench rc=$?"; mkdir -p "$OUT/fp8"; cp /tmp/r8/h200_fp8.json /tmp/r8/h200_fp8.md "$OUT/fp8/"
grep -E "Targets met|^\| b" /tmp/r8/h200_fp8.md 2>/dev/null | head -9
timeout -s KILL 120 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r16 > "$OUT/h200_bench_$C.log" 2>&1
echo "bench rc=$?"; mkdir -p "$OUT/bf16"; cp /tmp/r16/h200.json /tmp/r16/h200.md "$OUT/bf16/"
sed -n '/Ours vs the best peer/,/Geomean/p' /tmp/r16/h200.md | grep -E "h128|b132|h64|Geomean"
