#!/usr/bin/env bash
# s41h: v125 against main, bursty and sustained. s41g found every 16-bit row at the 700 W cap when sustained, and
# b128/s4096/h32 (32 query rows in a 64-row tile) at 1418 MHz, 118.0 mJ a step: as much as h64's 119.6, so its 32
# padding rows (stale Q bytes multiplied by Q.K^T, their P by P.V) cost as much as real ones; ours 0.97x
# flashinfer_mla there (164.8 µs). v125 (branch exp-v125-dead-padding-rows): v124's zero Q padding rows, and those
# rows' probabilities 0 (exponent base 3e38), so both products multiply zeros there. Predicted: sustained h32 and
# b64/s2048/h16/q2 -5..-10% energy a step (h32 ~108-112 mJ, ~1.02-1.06x flashinfer_mla); bursty 0..-2%; h64 and h128
# level (no padding). Setup: trees main-nocheck (db5a8b3) and V125; carry .variants/s41/trees, wheels and .peers.
set -uo pipefail
T=.variants/s41/trees
PEERS=$PWD/.peers
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b32/s1024/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS="tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 300 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V125 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 5 "$OUT/p.log"
S=b128/s4096/h32/q1,b64/s2048/h16/q2
(cd $T/main-nocheck && MLA_BACKEND_CACHE=/tmp/ext-main-nocheck PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 \
    python3 benchmarks/power_probe.py --configs $S --names mla_backend --seconds 3 > "$OUT/power_main.log" 2>&1
 echo "power main rc=$?"; grep -E '^b[0-9]' "$OUT/power_main.log")
(cd $T/V125 && MLA_BACKEND_CACHE=/tmp/ext-V125 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 90 \
    python3 benchmarks/power_probe.py --peers "$PEERS" --configs $S --names mla_backend,flashinfer_mla --seconds 3 \
    > "$OUT/power_V125.log" 2>&1; echo "power V125 rc=$?"; grep -E '^b[0-9]' "$OUT/power_V125.log")
