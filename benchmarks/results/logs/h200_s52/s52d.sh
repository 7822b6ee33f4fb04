#!/usr/bin/env bash
# s52d: why v162 was level. The narrow kernel's all-CTA timeline (h200_s51/patches/timeline-narrow.patch) on main (NT)
# and on v162 (NT162), each shape's marks read warm (the second of two replays of one graph, as s51a) and cold (after
# three other input sets' replays), with timeline_rotated.py.
# Predicted: if the plan row stays in L2 through other sets' KV streams, main's "wait released -> page known" is
# ~0.8 µs warm and cold alike and v162's the same; if it is cold in DRAM, main's cold gap is larger and v162's cold
# gap is smaller than main's.
# Trees: bash benchmarks/variant_trees.sh .variants/s52/trees main:NT exp-v162-plan-prefetch:NT162, then in each
#   patch -p1 < ../../../../benchmarks/results/logs/h200_s51/patches/timeline-narrow.patch
# Carry .variants.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
for T in NT NT162; do
  (cd .variants/s52/trees/$T && MLA_BACKEND_CACHE=/tmp/ext-$T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 200 \
     python3 -c "from mla_backend import _build; print(_build.load_extension())" > "$OUT/build-$T.log" 2>&1) &
done
wait
for T in NT NT162; do
  (cd .variants/s52/trees/$T && MLA_BACKEND_CACHE=/tmp/ext-$T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 150 python3 \
      ../../../../benchmarks/results/logs/h200_s52/timeline_rotated.py "$OUT/timeline-$T.json" > "$OUT/timeline-$T.log" 2>&1)
  echo "== $T rc=$?"; cat "$OUT/timeline-$T.log" | grep -v "^$" | head -60
done
cd "$OUT" && tar czf s52d.tgz *.json *.log && rm -f *.json
