#!/usr/bin/env bash
# s42h: v129 against main, in energy. v103 (thirty-sixth session) launched a part's row tiles as clusters of two
# (one GPC, so one side of the L2: hit rate 38.7% -> 50.9% at b132) and was level in time; its energy was never
# measured. v127's multicast (in clusters of two) took +1.2%. v129 (branch exp-v129-tile-clusters): the clusters
# alone, the kernel's SASS main's. Predicted: bursty level; sustained b132 and h128/q1 -0..-3% energy if crossing the
# L2's sides costs energy, else level.
# Setup: bash benchmarks/variant_trees.sh .variants/s42/trees4 4d48e17:main-nocheck exp-v129-tile-clusters:V129;
# carry .variants/s42/trees4 and .variants/s42/wheels.
set -uo pipefail
T=.variants/s42/trees4
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b16/s4096/h128/q1,b128/s4096/h64/q1
TESTS=tests/test_kernel_gpu.py PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 200 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V129 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 5 "$OUT/p.log"
n=0
for t in main-nocheck V129 main-nocheck V129; do
  n=$((n + 1))
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 40 \
      python3 benchmarks/power_probe.py --names mla_backend --configs b132/s8192/h128/q2,b128/s4096/h128/q1 \
      --seconds 3 > "$OUT/power_${n}_$t.log" 2>&1; echo "power $t rc=$?"; grep -E '^b[0-9]' "$OUT/power_${n}_$t.log")
done
