#!/usr/bin/env bash
# s43f: what O's rescale costs the fp8 64-row kernel (folded 17-32-row tile and unfolded tile), which calls the same
# wide::scale_rows: the knockout copy norescale-nocheck of s43b (trees2; its fp8 kernels are main's) against main.
# Predicted: folded h32 -2..-6% (its block is bound by shared-memory traffic, which the FMULs do not use; they take
# issue slots from warpgroup 0's chain), unfolded h64/h128 -3..-7% (as the 16-bit kernel's 128-head rows).
# Carry .variants/s43.
set -uo pipefail
T=.variants/s43/trees2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 200 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/norescale-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build" "$OUT/p.log"; tail -n 6 "$OUT/p.log"
n=0
for t in main-nocheck norescale-nocheck main-nocheck norescale-nocheck; do
  n=$((n + 1))
  flag=""; [ $t = norescale-nocheck ] && flag=--unchecked
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 30 \
      python3 benchmarks/power_probe.py $flag --kv fp8 --names mla_backend --configs b128/s4096/h32/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
