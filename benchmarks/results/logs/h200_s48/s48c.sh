#!/usr/bin/env bash
# s48c: v148b (one mbarrier a sub-tile, Q.K^T takes each sub-tile as it lands, as FlashMLA does) and v148c (v148b
# with an L2 evict-first policy on the KV TMA loads, FlashMLA's hint) against main and s48b's v148 (tested there:
# 1247 passed). s48b: V148 1.063x main at h128/q1, 1.017x q2, 0.942x b132, 1.14x b16/h128, 1.13x b1/s32768/h128;
# its noload twin 0.96x main's noload on the first three, level on the small ones: the seesaw's consumers are ahead,
# its loads arrive late (a group of 4-5 sub-tiles, 32-40 KB, waited for whole).
# Predicted: v148b -3..-6% against v148 on h128/q1, more on b16 and b1 (shorter pieces: each pair's loads less
# hidden); v148c within +-1% of v148b.
set -uo pipefail
T=.variants/s48/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/c" "$C" $T/main-nocheck $T/V148-nocheck $T/V148B \
    $T/V148C > "$OUT/c.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|passed|failed|FAILED|ERROR|Error" "$OUT/c.log" | head -20; tail -n 6 "$OUT/c.log"
