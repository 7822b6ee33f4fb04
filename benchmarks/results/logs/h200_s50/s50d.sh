#!/usr/bin/env bash
# s50d: v155 (branch exp-v155-sum-threshold): the 16-bit 64-row softmax decides whether a warp takes the second (exact)
# pass from the per-thread sums of the probabilities it computed against the running max (a block max above the
# running max + 8 is a probability above 2^8, so a sum <= 2^8 in every thread says no row moves), and reduces the
# block's row maxima (32 FMNMX, 4 SHFL a thread) only in that pass; a piece's first block always takes it. The common
# path from Q K^T's wait to the barrier before P V: 244 -> 195 instructions (SASS here). Its 16-bit GPU tests, one
# probe round against main, then bench_decode on the three 128-head rows for main, V155 and main again.
# Predicted: -0.5..-2% on the 128-head rows (-1.6% if the softmax's issue bounds it), b16/b1 -0.5..-1.5%, h64 level.
# Setup: bash benchmarks/variant_trees.sh .variants/s50/trees 97fe1c2:main-nocheck exp-v155-sum-threshold:V155; carry
# .variants (the cutlass wheel in .variants/s49/wheels) and .peers.
set -uo pipefail
T=.variants/s50/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 170 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V155 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 5 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:97fe1c2 V155:$1 main-nocheck:97fe1c2; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 80 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s50d.tgz p p.log pip.log bench_* && rm -rf p bench_main-nocheck bench_V155 p.log pip.log bench_*.log
