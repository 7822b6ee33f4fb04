#!/usr/bin/env bash
# s39g: ncu --set full of the folded 64-row fp8 kernel (1de3d82, 17-32 rows) at b128/s4096/h32 with SASS source
# counters: where warpgroup 0's block and the producer stall now that the producer's transpose is on the critical
# path (s39d: with it knocked out the folded kernel is 7% faster, main 0.5%). Carry .variants/s39/wheels.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
timeout -s KILL 200 ncu --set full --import-source no --clock-control none -k regex:mla_decode_wide_fp8 \
    --launch-skip 3 --launch-count 1 -o "$OUT/folded" python3 benchmarks/probe_decode.py --configs b128/s4096/h32/q1 \
    --kv fp8 --reps 5 > "$OUT/ncu_run.log" 2>&1
echo "ncu rc=$?"
ncu -i "$OUT/folded.ncu-rep" --page details > "$OUT/folded_details.txt" 2>&1
ncu -i "$OUT/folded.ncu-rep" --page source --csv --print-source sass > "$OUT/folded_sass.csv" 2>&1
gzip "$OUT/folded_sass.csv"; rm -f "$OUT"/*.ncu-rep
grep -E "SM Frequency|Duration|Compute \(SM\) Throughput|Issue Slots Busy|Eligible Warps" "$OUT"/folded_details.txt
grep -iE "Shared|L1/TEX Hit|Mem Busy|Max Bandwidth|Pipe|Stall|Warp Cycles" "$OUT"/folded_details.txt | head -40
