#!/usr/bin/env bash
# s49h: v153 (branch exp-v153-speculative-base, ab1d21b): warpgroup 0 of the 16-bit 64-row kernel computes P against the
# running max as it is (the lazy max almost never moves it) while the block's row maxima reduce beside the
# exponentials, and computes P again only in a warp where a block moves a running max: the max's FMNMX chains and two
# shuffles (~170 of warpgroup 0's ~3,035 cycles a block at b132 in s48g's ncu) leave the serial path. Its 16-bit GPU
# tests, one probe round against main, then bench_decode on the three 128-head rows for main, V153 and main again.
# Predicted: -2..-5% on the 128-head rows, -1..-3% at b16 and b1 (each piece's first block computes P twice), h64 level.
# Setup: bash benchmarks/variant_trees.sh .variants/s49/trees exp-v153-speculative-base:V153; carry .variants/s49, .peers.
set -uo pipefail
T=.variants/s49/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 170 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V153 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 5 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:1f2a046 V153:ab1d21b main-nocheck:1f2a046; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 80 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s49h.tgz p p.log pip.log bench_* && rm -rf p bench_main-nocheck bench_V153
