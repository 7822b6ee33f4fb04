#!/usr/bin/env bash
# s39k: why v114b made the unfolded 64-row fp8 kernel 3.5-4% slower (s39h): ncu source counters (warp state and
# SASS-level stall samples only) of main's and V114B's unfolded kernel at b128/s4096/h64, for the next session to
# compare warpgroup 0's chain. Trees: main-nocheck (kernels of 1b33b79), V114B-nocheck (branch exp-v114b-opaque-page).
# Carry .variants/s39.
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
for name in main-nocheck V114B-nocheck; do
  (cd $T/$name && export PYTHONPATH=/tmp/devsite:$PWD && python3 -c "from mla_backend import _build; _build.load_extension()" \
      > "$OUT/build_$name.log" 2>&1 && timeout -s KILL 80 ncu --section WarpStateStats --section SourceCounters \
      --section SpeedOfLight --import-source no --clock-control none -k regex:mla_decode_wide_fp8 --launch-skip 3 \
      --launch-count 1 -o "$OUT/$name" python3 benchmarks/probe_decode.py --configs b128/s4096/h64/q1 --kv fp8 --reps 5 \
      > "$OUT/ncu_$name.log" 2>&1; ncu -i "$OUT/$name.ncu-rep" --page source --csv --print-source sass 2>/dev/null \
      | gzip > "$OUT/${name}_sass.csv.gz"; ncu -i "$OUT/$name.ncu-rep" --page details > "$OUT/${name}_details.txt" 2>&1
   grep -E "Duration|Elapsed Cycles" "$OUT/${name}_details.txt" | head -2; rm -f "$OUT/$name.ncu-rep")
done
