#!/usr/bin/env bash
# s49c: v150 (branch exp-v150-parallel-full-waits: warpgroup 0 waits for a stage's three sub-tile groups with the three
# try_waits issued together; s48g's ncu of main at b132 put ~160 cycles a block on the three waits one after another,
# ~50 a try_wait with the data long landed) and v151 (exp-v151-two-score-chains: v150 with Q.K^T in two accumulator
# chains, even and odd k-steps, summed after the wait: one chain pays ~3.5 cycles a wgmma of latency, wgmma_rates.md).
# Their 16-bit GPU tests, a probe (2 rounds) against main, then bench_decode (the grid's protocol, every peer of
# .peers) on the three 128-head rows for main, V150, V151 and main again.
# Predicted: V150 -2..-3.5% at h128/q1, q2 and b132, -1..-3% at b16 and b1, h64 and h32 level to -1%; V151 a further
# 0..-2% on the 128-head rows. bench b132: main ~979, V150 ~950-960.
# Setup: bash benchmarks/variant_trees.sh .variants/s49/trees exp-v150-parallel-full-waits:V150 \
#   exp-v151-two-score-chains:V151 (main-nocheck from s49a); carry .variants/s49 and .peers.
set -uo pipefail
T=.variants/s49/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V150 $T/V151 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:1f2a046 V150:bdf7fae V151:75b4080 main-nocheck:1f2a046; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s49c.tgz p p.log pip.log bench_* && rm -rf p bench_main-nocheck bench_V150 bench_V151
