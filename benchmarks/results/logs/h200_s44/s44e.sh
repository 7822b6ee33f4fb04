#!/usr/bin/env bash
# s44e: (1) v139 (exp-v139-folded-fast-path) against main (670ca07): with the folded fp8 tile's lazy max (v135b) almost
# no block moves a row's max, yet each still exchanges its quads' maxima (two SHFL.BFLY a row, in the MIO queue the
# producer's transposes use) and folds them (an exp2 a row). v139: one vote on each thread's own scores against the
# running max + slack, the exchange and fold only where one exceeds (the same base and factor); the folded kernel
# only (the 16-bit and unfolded fp8 SASS main's, compared here). v134 did this for the 16-bit kernel: level.
# Predicted: folded rows -0.5..-1.5%; fp8 tests pass. (2) Sustained at the cap, main against vLLM's FlashMLA fp8 on
# the two folded rows of issue 12's grid (s41a had b128/s4096/h32 at 1.03x before v135b). Predicted: 1.04-1.06x.
# Carry .variants/s44 and .peers.
set -uo pipefail
T=.variants/s44/trees
ROOT=$PWD
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1,b32/s4096/h32/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V139 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 6 "$OUT/p.log"
(cd $T/main-nocheck && MLA_BACKEND_CACHE=/tmp/ext-main-nocheck PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 90 \
    python3 benchmarks/power_probe.py --peers $ROOT/.peers --kv fp8 --names mla_backend,flashmla_fp8 \
    --configs b128/s4096/h32/q1,b64/s2048/h16/q2 --seconds 3 > "$OUT/power.log" 2>&1; echo "power rc=$?"
 grep -E '^b[0-9]' "$OUT/power.log")
