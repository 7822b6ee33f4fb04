#!/usr/bin/env bash
# s39a (prepared in the thirty-eighth session, not run): ncu --set full of main's 64-row fp8 kernel at
# b128/s4096/h128 with SASS-level stall samples (s37d's profile was of v106, a refuted variant), so that the next
# change to warpgroup 0's block starts from where its ~3,300 cycles stall, not from a model: six models missed in the
# thirty-seventh and thirty-eighth sessions (PERF_NOTES.md). Run from the repository root at main; carry
# .variants/s38/wheels (the cutlass wheel). Read the CSV as in the thirty-eighth session: stall samples by SASS
# line between the Q.K^T wait and the last P.V of warpgroup 0's loop, and which barrier each long wait is on.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
timeout -s KILL 200 ncu --set full --import-source no --clock-control none -k regex:mla_decode_wide_fp8 \
    --launch-skip 3 --launch-count 1 -o "$OUT/main" python3 benchmarks/probe_decode.py --configs b128/s4096/h128/q1 \
    --kv fp8 --reps 5 > "$OUT/ncu_run.log" 2>&1
echo "ncu rc=$?"
ncu -i "$OUT/main.ncu-rep" --page details > "$OUT/main_details.txt" 2>&1
ncu -i "$OUT/main.ncu-rep" --page source --csv --print-source sass > "$OUT/main_sass.csv" 2>&1
gzip "$OUT/main_sass.csv"; rm -f "$OUT"/*.ncu-rep
grep -E "SM Frequency|Duration|Compute \(SM\) Throughput|Issue Slots Busy|Eligible Warps" "$OUT"/main_details.txt
grep -iE "Shared|L1/TEX Hit|Mem Busy|Max Bandwidth|Pipe|Stall|Warp Cycles" "$OUT"/main_details.txt | head -40
