#!/usr/bin/env bash
# s23h: the fp8 grid at HEAD (kernels of 943e90d) for its results files, and a second bf16 side by side (run-to-run spread).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=$(cat .variants/commit)
timeout -s KILL 150 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r8 > "$OUT/h200_bench_fp8_$C.log" 2>&1
echo "fp8 bench rc=$?"; mkdir -p "$OUT/fp8"; cp /tmp/r8/h200_fp8.json /tmp/r8/h200_fp8.md "$OUT/fp8/"
grep -E "Targets met|^\| b" /tmp/r8/h200_fp8.md 2>/dev/null | head -9
timeout -s KILL 150 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit $C \
    --out-dir /tmp/r16 > "$OUT/h200_bench_${C}_run2.log" 2>&1
echo "bench rc=$?"; cp /tmp/r16/h200.md "$OUT/h200_run2.md"
sed -n '/Ours vs the best peer/,/Geomean/p' /tmp/r16/h200.md | grep -E "b1/|b4/|b8/|b32/|b132|h128|Geomean"
