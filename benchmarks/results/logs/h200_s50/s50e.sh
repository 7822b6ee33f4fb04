#!/usr/bin/env bash
# s50e: v156 (branch exp-v156-three-eighths-on-fma, 171d9c0): v155 (level in s50d: 49 fewer instructions on the softmax's
# common path bought nothing, so that path is not issue-bound) with more exponentials on the FMA pipe, where MUFU.EX2's
# 8 cycles a warp instruction may bound it: 3/8 (FMA_GROUP 5: 20 MUFU.EX2 a thread and block instead of 24, 223
# instructions on the common path) and v156b half (FMA_GROUP 4: 16 MUFU, 251 instructions; its tree's define edited).
# v137 measured both worse on top of the FMNMX chains that v155 removed. Tests on V156, one probe round, then
# bench_decode on the 128-head rows for main, V156, V156B and main again.
# Predicted: V156 -0.5..-1.5% on the 128-head rows (MUFU 192 -> 160 cycles a block if it paces the path), V156B level
# or worse (its FMA pipe takes 28 instructions more than main's common path).
# Setup: variant_trees.sh .variants/s50/trees exp-v156-three-eighths-on-fma:V156 ...:V156B-nocheck (FMA_GROUP 4).
set -uo pipefail
T=.variants/s50/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V156 $T/V156B-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 5 "$OUT/p.log"
B=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2
for spec in main-nocheck:97fe1c2 V156:171d9c0 V156B-nocheck:v156b main-nocheck:97fe1c2; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 80 python3 \
        benchmarks/bench_decode.py --configs "$B" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" >> "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b[0-9/a-z]* \| [0-9]" "$OUT/bench_$name/"*.md | head -3
done
cd "$OUT" && tar czf s50e.tgz p p.log pip.log bench_* && rm -rf p p.log pip.log bench_*
