#!/usr/bin/env bash
# s49b: is v149 (the seesaw with FlashMLA's shared-memory arrangement) faster than main where issue 9 measures, at the
# b132 row? s49a's probe had it 0.94x main at b132/s8192/h128/q2 (main's rounds 971 / 942, v149's 903 / 901) but level at
# b128/s4096/h128/q2 and 4% behind at h128/q1. (1) Both builds alone for 3 s each, once, at b132 and q2
# (benchmarks/power_probe.py: sustained time, clock and energy a step). (2) bench_decode on those two rows with every
# peer of .peers, once with main's tree as ours and once with v149's (the grid's protocol, so the grid's power state).
# Predicted: sustained energy a step within +-1.5% of main's (v148e +1.2%); in bench_decode b132 main ~975-985 us,
# v149 ~940-960 (below 650 TFLOPS = 926.6 us); q2 level.
# Setup: trees of s49a (.variants/s49/trees main-nocheck, V149), carry .variants/s49 and .peers.
set -uo pipefail
T=.variants/s49/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b132/s8192/h128/q2,b128/s4096/h128/q2
TESTS=none PROBE_TIMEOUT=90 ROUNDS=1 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V149 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 3 "$OUT/p.log"
for name in main-nocheck V149; do
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 python3 \
        benchmarks/power_probe.py --names mla_backend --configs "$C" --seconds 3 >> "$OUT/power_$name.log" 2>&1)
    echo "power $name rc=$?"; grep -E '^b[0-9]' "$OUT/power_$name.log" | tail -n 2
done
for spec in main-nocheck:1f2a046 V149:e12e9de; do
    name=${spec%%:*} commit=${spec#*:}
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 180 python3 \
        benchmarks/bench_decode.py --configs "$C" --peers ../../../../.peers --card h200_$name --commit $commit \
        --out-dir "$OUT/bench_$name" > "$OUT/bench_$name.log" 2>&1)
    echo "bench $name rc=$?"; grep -E "^\| b" "$OUT/bench_$name/"*.md | head -4
done
cd "$OUT" && tar czf s49b.tgz p p.log pip.log power_*.log bench_* && rm -rf p bench_main-nocheck bench_V149
