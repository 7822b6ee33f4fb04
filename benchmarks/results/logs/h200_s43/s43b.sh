#!/usr/bin/env bash
# s43b: where else a sustained step's energy goes. (1) wide-norescale (knockout, outputs wrong): O's rescale off in
# both warpgroups, 128 FMUL a thread and block each; prices what skipping factors of exactly 1 could save at most
# (ptxas turns a predicated multiply into FMUL + FSEL, so no cheap correct variant exists yet). (2) V132
# (exp-v132-exp-on-mufu): the 16-bit kernel's exponentials all on MUFU.EX2 (v61c put a quarter on the FMA pipe, ~9
# instructions a value, for -0.7% in time). Predicted: norescale -2..-6% energy at b132 and h128/q1; V132 bursty
# +0..+1%, sustained -0.5..-1.5% energy.
# Setup: bash benchmarks/variant_trees.sh .variants/s43/trees2 main:main-nocheck exp-v132-exp-on-mufu:V132; the
# copy norescale-nocheck = main-nocheck with wide_diagnostics.edited(tree, "wide-norescale"); carry .variants/s43.
set -uo pipefail
T=.variants/s43/trees2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1
TESTS=tests/test_kernel_gpu.py PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 300 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V132 $T/norescale-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 7 "$OUT/p.log"
n=0
for t in main-nocheck V132 norescale-nocheck main-nocheck V132 norescale-nocheck; do
  n=$((n + 1))
  flag=""; [ $t = norescale-nocheck ] && flag=--unchecked
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 40 \
      python3 benchmarks/power_probe.py $flag --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
