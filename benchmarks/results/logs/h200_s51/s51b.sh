#!/usr/bin/env bash
# s51b: v157 (branch exp-v157-staged-narrow-output): the 16-bit narrow kernel stages a request's output rows in Q's
# tile (rows padded by 16 bytes) and copies them out in 16-byte chunks, instead of 32 4-byte stores a thread that each
# touch eight output rows. s51a's timeline put ~1.1 us between a split CTA's last P.V and its end.
# Predicted: write_output 1.1 -> ~0.5 us a CTA; b8/s8192/h16 -0.4..-0.6 us, b4/b1/b32 -0.3..-0.6, b128/h16 -0.3 (once a CTA).
# Trees (.variants/s51/trees): main-nocheck (e2dbf01), V157, V157T (V157 + patches/timeline-narrow.patch + timeline_narrow.py).
set -uo pipefail
T=.variants/s51/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b32/s1024/h16/q1/varlen,b128/s4096/h16/q1,b64/s2048/h8/q2,b2/s2048/h3/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V157 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "passed|failed|tests rc|FAILED|ERROR" "$OUT/p.log" | head -8; tail -n 14 "$OUT/p.log"
(cd $T/V157T && MLA_BACKEND_CACHE=/tmp/ext-V157T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 python3 \
    timeline_narrow.py "$OUT/timeline.json" > "$OUT/timeline.log" 2>&1)
echo "timeline rc=$?"; grep -E "graph replay|last P.V|decode  end|combine end" "$OUT/timeline.log" | head -24
B=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b32/s1024/h16/q1/varlen
BENCH_TIMEOUT=90 timeout -s KILL 300 bash benchmarks/bench_trees.sh "$OUT/bench" "$B" .peers \
    $T/main-nocheck:e2dbf01 $T/V157:910c337 $T/main-nocheck:e2dbf01
cd "$OUT" && tar czf s51b.tgz p p.log pip.log bench timeline.* && rm -rf p p.log bench timeline.json
