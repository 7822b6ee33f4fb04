#!/usr/bin/env bash
# s44c: (1) v137a / v137b against main (670ca07): 3/8 / 1/2 of the 16-bit 64-row kernel's exponentials on the FMA pipe
# (a quarter on main, v61c). v133c took O's rescale (128 FMUL a thread and block on the FMA pipe) off almost every
# block, so the FMA pipe has room for more of the MUFU's work (v132, all on MUFU, was +0.7..+1.9%). MUFU.EX2 in SASS
# 52 / 44 / 36; 0 spills, no C75xx. Predicted: V137A 128-head rows -0.5..-2%, h64 / h32 0..-1%; V137B -1..+2%;
# sustained b132 energy alike. 16-bit tests on both. (2) Why v136b lost (s44b: +3.5..+8%): its noload twin against
# main's (the TMA producer arrives without loading, outputs wrong by design). Predicted: if the overlap of warpgroup
# 1's P.V with the softmax pays and only the loads' later release costs, V136B-noload -2..-6% against main-noload;
# if the overlapped work itself slows, level or worse. Carry .variants/s44.
set -uo pipefail
T=.variants/s44/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b132/s8192/h128/q2,b128/s4096/h64/q1,b128/s4096/h32/q1
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V137A $T/V137B > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 8 "$OUT/p.log"
C2=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1
TESTS=none PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/n" "$C2" \
    $T/main-noload-nocheck $T/V136B-noload-nocheck > "$OUT/n.log" 2>&1
echo "noload rc=$?"; tail -n 4 "$OUT/n.log"
n=0
for t in main-nocheck V137A V137B; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 40 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
