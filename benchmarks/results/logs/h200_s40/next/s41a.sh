#!/usr/bin/env bash
# s41a (prepared in the fortieth session, not run): how much of the fp8 rows' gap is the card's power cap. At
# b128/s4096/h128 the 64-row fp8 kernel ran at 1800 MHz against FlashMLA fp8's 1905 (s37d, both at the 700 W cap):
# ours took more cycles a step and drew more power a cycle. The fortieth session's knockouts (s40e) price Q.K^T at
# 17% of the folded tile (b128/s4096/h32) and P.V at 16% of the unfolded one (h64); neither says whether the clock
# moves with them. This call: each implementation alone for 3 s a row with nvidia-smi sampling (power_probe.py,
# outputs checked), main's ours fp8 vs FlashMLA fp8 on the 17-32-row and 64-128-row fp8 rows, and the knockout copies
# of s40e on h32 (does the clock rise when Q.K^T or the loads are gone?).
# Predicted: h32 below the cap (~1980 MHz for both: it moves 3 TB/s), h64/h128 at the cap (ours 1800-1850 MHz, FlashMLA
# 1900+); if so the 64-128-row gap (0.97x) is mostly clock, and fewer shared-memory bytes a block is the lever there.
# Setup: python benchmarks/wide_diagnostics.py . .variants/s41/wd (keep fp8-main, fp8-noqk, fp8-noload; strip each tree
# of benchmarks/results, docs, configs, integration_tests, PERF_NOTES); the cutlass wheel in .variants/s41/wheels;
# carry .variants/s41 and .peers.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 200 python3 benchmarks/power_probe.py --peers .peers --kv fp8 --names mla_backend,flashmla_fp8 \
    --configs b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1 --seconds 3 \
    > "$OUT/power.log" 2>&1
echo "power rc=$?"; tail -n 12 "$OUT/power.log"
for t in fp8-main fp8-noqk fp8-noload; do
  (cd .variants/s41/wd/$t-nocheck && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 120 \
      python3 benchmarks/power_probe.py --kv fp8 --names mla_backend --configs b128/s4096/h32/q1 --seconds 3 \
      --unchecked > "$OUT/power_$t.log" 2>&1; echo "$t rc=$?"; tail -n 3 "$OUT/power_$t.log")
done
