#!/usr/bin/env bash
# s42g: why v128 was level (s42f). ncu's source counters of main's and v128's folded fp8 kernel at b128/s4096/h32
# (one launch each): the shared wavefronts of each LDGSTS. If v128's copies are down to their ideal (4 a warp) and the
# time stayed, the copies' shared-memory writes were not on the block's critical path; if not, the hardware writes a
# line that spans two raw rows in two wavefronts.
set -uo pipefail
T=.variants/s42/trees3
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
for t in main-nocheck V128; do
  (cd $T/$t && export MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD
   timeout 200 python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build_$t.log" 2>&1
   timeout -s KILL 150 ncu --section SourceCounters --import-source no --clock-control none \
       -k regex:mla_decode_wide_fp8 --launch-skip 3 --launch-count 1 -o "$OUT/$t" python3 benchmarks/probe_decode.py \
       --configs b128/s4096/h32/q1 --kv fp8 --reps 5 > "$OUT/ncu_$t.log" 2>&1
   echo "ncu $t rc=$?"
   ncu -i "$OUT/$t.ncu-rep" --page source --csv --print-source sass > "$OUT/$t.csv" 2>&1
   python3 - "$OUT/$t.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h = next(r for r in rows if "Source" in r)
i = {k: h.index(k) for k in ("Source", "Instructions Executed", "L1 Wavefronts Shared", "L1 Wavefronts Shared Ideal")}
tot = {"LDGSTS": [0, 0, 0], "all": [0, 0, 0]}
for r in rows[rows.index(h) + 1:]:
    try:
        n, w, ideal = (int(r[i[k]]) for k in ("Instructions Executed", "L1 Wavefronts Shared", "L1 Wavefronts Shared Ideal"))
    except (ValueError, IndexError):
        continue
    tot["all"] = [a + b for a, b in zip(tot["all"], (n, w, ideal))]
    if "LDGSTS" in r[i["Source"]] and "BAR" not in r[i["Source"]]:
        tot["LDGSTS"] = [a + b for a, b in zip(tot["LDGSTS"], (n, w, ideal))]
for k, (n, w, ideal) in tot.items():
    print(f"{k}: warp instructions {n}, shared wavefronts {w}, ideal {ideal}, per block {w / 8192:.0f}")
PY
   rm -f "$OUT/$t.ncu-rep"; gzip -f "$OUT/$t.csv")
done
