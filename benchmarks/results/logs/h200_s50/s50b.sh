#!/usr/bin/env bash
# s50b: v154 (branch exp-v154-first-block-and-late-barrier): the 16-bit 64-row kernel's piece-first block takes the
# softmax's exact pass alone (v153 computed its P twice: the running max is -inf there, so the block always moves it),
# and a full block issues warpgroup 0's P V before the barrier that guards P's store over the RoPE sub-tile (that
# barrier's latency leaves the path from the softmax to P V). Its 16-bit GPU tests, one probe round against main, then
# bench_decode on the three 128-head rows for main, V154 and main again.
# Predicted: b1/s32768/h128 -1..-2%, b16/h128 -0.5..-1.5%, the 128-head rows -0.5..-1%, h64 level.
# Setup: bash benchmarks/variant_trees.sh .variants/s50/trees 97fe1c2:main-nocheck exp-v154-...:V154; carry
# .variants (the cutlass wheel in .variants/s49/wheels) and .peers.
set -uo pipefail
T=.variants/s50/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 170 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V154 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 5 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:97fe1c2 V154:$1 main-nocheck:97fe1c2; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 80 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s50b.tgz p p.log pip.log bench_* && rm -rf p bench_main-nocheck bench_V154 p.log pip.log bench_*.log
