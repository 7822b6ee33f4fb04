#!/usr/bin/env bash
# s42d: v127 against main. v127 (branch exp-v127-tile-multicast): where a query has an even number of 64-row tiles
# (the 128-head rows: 2 tiles at q1, 4 at q2) the tiles of a part run as clusters of two CTAs; each CTA's producer
# loads every other TMA box of each block group into both CTAs (multicast), and the readers release a group on both
# CTAs' empty barriers. s42c: the repeated L2-to-shared copies cost 9% of a sustained b132 step's energy (7.5% at
# h128/q1); a cluster of two halves them. v31 (the same idea on an early kernel) cost +1.7..+2.6% in time.
# Predicted: bursty h128/q1 -1..+2%, b132 (capped even in bursts) -2..-6%; sustained b132 and h128/q1 -3..-6% energy.
# Setup: bash benchmarks/variant_trees.sh .variants/s42/trees2 4d48e17:main-nocheck exp-v127-tile-multicast:V127;
# carry .variants/s42/trees2 and .variants/s42/wheels.
set -uo pipefail
T=.variants/s42/trees2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s4096/h64/q2,b128/s4096/h64/q1
TESTS=tests/test_kernel_gpu.py PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=3 timeout -s KILL 300 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V127 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head -20; tail -n 8 "$OUT/p.log"
(cd $T/V127 && MLA_BACKEND_CACHE=/tmp/ext-V127 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 90 python3 -m pytest -q \
    -m gpu -p no:cacheprovider tests/test_kernel_gpu.py -k sanitizer > "$OUT/sanitizer.log" 2>&1
 echo "sanitizer rc=$?: $(tail -n 1 "$OUT/sanitizer.log")")
n=0
for t in main-nocheck V127 main-nocheck V127; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 45 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
