#!/usr/bin/env bash
# s42c: what the repeated L2-to-shared copies of the 128-head rows cost in energy. Each KV block is read from DRAM
# once (s36b) but copied into 2 (q1) or 4 (q2) CTAs, one a row tile. wide-noloaddup (wide_diagnostics.py): only each
# part's first row tile loads; wide-noload: none does. Outputs wrong by design (--unchecked). Sustained 3 s each
# (power_probe.py; main twice, first and last), then 2 interleaved bursty rounds.
# Predicted: if the loads' 32% of a b132 step (s41b) is mostly DRAM, noloaddup saves < 5% and multicast (v31) stays
# closed; if the L2-to-shared copies dominate, noloaddup saves 10-20% and multicast is the 128-head rows' lever.
# Setup: s42a's trees plus `wide_diagnostics.edited(main-nocheck, "wide-noload" / "wide-noloaddup")` copies.
set -uo pipefail
T=.variants/s42/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
for t in main-nocheck wide-noloaddup-nocheck wide-noload-nocheck; do
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD python3 -c \
      "from mla_backend import _build; _build.load_extension()" > "$OUT/build_$t.log" 2>&1; echo "build $t rc=$?") &
done
wait
C=b132/s8192/h128/q2,b128/s4096/h128/q1
n=0
for t in main-nocheck wide-noloaddup-nocheck wide-noload-nocheck main-nocheck; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 90 \
      python3 benchmarks/power_probe.py --unchecked --names mla_backend --configs $C --seconds 3 \
      > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
TESTS=none PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 240 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/wide-noloaddup-nocheck $T/wide-noload-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 3 "$OUT/p.log"
