#!/usr/bin/env bash
# s43c: v133 / v133b against main. s43b's knockout: O's rescale (scale_rows, 128 FMUL a thread and block in each
# consumer warpgroup) is 7% of the 128-head rows' bursty time and 5% of b132's sustained energy. v133
# (exp-v133-skip-unit-rescale): a warp skips it when all its rows' factors are exactly 1 (a warp vote and a branch;
# also in the fp8 64-row kernel, which calls the same scale_rows). v133b (exp-v133b-lazy-max): v133 plus a lazy
# running max in the 16-bit kernel (a row's base moves only when a block's max exceeds it by 8 in log2), so almost
# every block skips. Predicted (v24a and session 18's lazy build lost 2-6% to such a branch on older kernels):
# V133 128-head rows -1..-4% bursty, V133B -3..-6%; h64/h32 level; sustained b132 energy -2..-5%.
# Setup: bash benchmarks/variant_trees.sh .variants/s43/trees3 main:main-nocheck exp-v133-skip-unit-rescale:V133
#        exp-v133b-lazy-max:V133B; carry .variants/s43.
set -uo pipefail
T=.variants/s43/trees3
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1
TESTS="tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=60 ROUNDS=2 \
    timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V133 $T/V133B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 8 "$OUT/p.log"
CF=b128/s4096/h128/q1,b128/s4096/h64/q1,b16/s4096/h128/q1,b128/s4096/h32/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 100 \
    bash benchmarks/probe_variants.sh "$OUT/f" "$CF" $T/main-nocheck $T/V133 > "$OUT/f.log" 2>&1
echo "fp8 rc=$?"; tail -n 4 "$OUT/f.log"
n=0
for t in main-nocheck V133 V133B main-nocheck V133 V133B; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 30 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
