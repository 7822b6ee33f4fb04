#!/usr/bin/env bash
# s44g: ncu SASS source counters (instructions executed and warp stall samples per instruction) of main (670ca07) for
# the 16-bit 64-row kernel at b128/s4096/h128/q1 and the folded fp8 tile at b128/s4096/h32, so the next session reads
# where warpgroup 0's block spends its issue slots and stalls (s44f: ours 70.9 M warp instructions a launch against
# vLLM's FlashMLA's 63.5 M, ALU pipe 26.7% against 11.3%, issue slots 33% against 26%). Carry .variants/s44.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
run() {   # name, kernel regex, probe args
  timeout -s KILL 150 ncu --section SourceCounters --section WarpStateStats --import-source no --clock-control none \
      -k "regex:$2" --launch-skip 3 --launch-count 1 -o "$OUT/$1" python3 benchmarks/probe_decode.py $3 --reps 5 \
      > "$OUT/ncu_$1.log" 2>&1
  echo "ncu $1 rc=$?"
  [ -f "$OUT/$1.ncu-rep" ] || return
  ncu -i "$OUT/$1.ncu-rep" --page source --csv --print-source sass > "$OUT/$1_sass.csv" 2>&1
  ncu -i "$OUT/$1.ncu-rep" --page details > "$OUT/$1_details.txt" 2>&1
  gzip "$OUT/$1_sass.csv"; rm -f "$OUT/$1.ncu-rep"
  grep -E "Duration|Warp Cycles Per Issued|Branch Instructions" "$OUT/$1_details.txt" | head -5
}
run wide16 mla_decode_kernel "--configs b128/s4096/h128/q1"
run folded8 mla_decode_wide_fp8 "--configs b128/s4096/h32/q1 --kv fp8"
ls -la "$OUT"
