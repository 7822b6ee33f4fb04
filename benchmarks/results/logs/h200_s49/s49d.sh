#!/usr/bin/env bash
# s49d: ncu of v149 (the seesaw with FlashMLA's shared-memory arrangement) as s48g took main's and s48f FlashMLA's:
# --set full with SASS source counters, one launch inside probe_decode's graph replays, at b132/s8192/h128/q2 and
# b128/s4096/h128/q1, to set its phases beside FlashMLA's (ncu_sass_summary.py --cuts). Carry .variants/s49.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
cd .variants/s49/trees/V149
export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-V149
W=$(mktemp -d)
python3 -c "from mla_backend import _build; _build.load_extension()" > "$W/build.log" 2>&1; echo "build rc=$?"
run() {   # name, config
  timeout -s KILL 90 ncu --set full --import-source no --clock-control none -k "regex:mla_decode_kernel" --launch-skip 3 \
      --launch-count 1 -o "$W/$1" python3 benchmarks/probe_decode.py --configs "$2" --reps 5 > "$W/ncu_$1.log" 2>&1
  echo "ncu $1 rc=$?"
  [ -f "$W/$1.ncu-rep" ] || return
  ncu -i "$W/$1.ncu-rep" --page source --csv --print-source sass > "$W/$1_sass.csv" 2>&1
  ncu -i "$W/$1.ncu-rep" --page details > "$W/$1_details.txt" 2>&1
  gzip "$W/$1_sass.csv"; rm -f "$W/$1.ncu-rep"
  grep -E "^ +(Elapsed Cycles|Duration|Compute \(SM\) Throughput|Executed Instructions  |Issue Slots Busy)" "$W/$1_details.txt"
}
run v149_b132 b132/s8192/h128/q2
run v149_h128 b128/s4096/h128/q1
tar -czf "$OUT/s49d.tgz" -C "$W" .
