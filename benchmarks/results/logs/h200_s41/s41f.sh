#!/usr/bin/env bash
# s41f: s41e's b132/s8192/h128/q2 row, V124 0.938x main over three rounds (main 1011 / 1034 / 1051 µs, V124 998 / 966 /
# 942), where v124 changes nothing on purpose (256 rows: no padding row; the TMA instantiation's SASS differs from
# main's by the prologue's loop and a few reordered instructions, difflib ratio 0.94). Sustained, alternating
# (power_probe.py, 3 s each, outputs checked), and 3 more interleaved probe rounds on b132 and h128/q2.
# Predicted: level (+-1.5%): s41e's spread is the power cap's.
set -uo pipefail
T=.variants/s41/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
for t in main-nocheck V124; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout 300 \
      python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build_$t.log" 2>&1; echo "build $t rc=$?") &
done
wait
for t in main-nocheck V124 main-nocheck V124; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q2 \
      --seconds 3 > "$OUT/power_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_$t.log")
done
TESTS=none PROBE_TIMEOUT=120 ROUNDS=4 timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/p" \
    b132/s8192/h128/q2,b128/s4096/h128/q2 $T/main-nocheck $T/V124 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 3 "$OUT/p.log"
