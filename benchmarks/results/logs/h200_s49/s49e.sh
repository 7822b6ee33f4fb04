#!/usr/bin/env bash
# s49e: v152 (branch exp-v152-pv0-in-two-halves): warpgroup 0 of the 16-bit 64-row kernel issues its P.V in two
# halves by tokens, the first once the first 32 columns' probabilities are packed, and exponentiates the other 32
# columns under those wgmmas (s48g's ncu: the softmax is ~550 of the ~3,035 cycles of warpgroup 0's block at b132,
# with the tensor pipe idle but for what remains of warpgroup 1's P.V). Its 16-bit GPU tests, a probe (2 rounds)
# against main, then bench_decode on the three 128-head rows for main, V152 and main again.
# Predicted: -2..-5% at h128/q1, q2 and b132 (the second half's ~150 cycles under the first half's 256 of P.V),
# -1..-3% at b16 and b1, h64 and h32 level; bench b132 ~930-950 us against main's ~965-980.
# Setup: bash benchmarks/variant_trees.sh .variants/s49/trees exp-v152-pv0-in-two-halves:V152; carry .variants/s49, .peers.
set -uo pipefail
T=.variants/s49/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 280 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V152 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:1f2a046 V152:ee97f55 main-nocheck:1f2a046; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s49e.tgz p p.log pip.log bench_* && rm -rf p bench_main-nocheck bench_V152
