#!/usr/bin/env bash
# s51d: v158 (branch exp-v158-warm-epilogue, 9c66bca): s51c's marks put a split narrow CTA's last ~1.1 us in its epilogue
# (row scales 0.22, the output stores 0.68, the LSE 0.22 us), the same with v157's staged stores: cold instruction
# fetch of code that runs once a part? v158 runs the epilogue's code once in a warm-up pass (no Q, no blocks, no
# stores) while the first block lands, Q's load issued before it. NT3 = NT2 (the marks) + the same warm-up pass.
# Predicted: if the epilogue is fetched cold, its 1.1 us -> ~0.3 and every small batch -0.5..-0.8 us (b8/s8192 29.7 ->
# ~29.0); b128/h16 -0.5 us; if not, level (or +0.1..0.3 us where Q's wait lands later).
set -uo pipefail
T=.variants/s51/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b32/s1024/h16/q1/varlen,b128/s4096/h16/q1,b64/s2048/h8/q2,b2/s2048/h3/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V158 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "passed|failed|tests rc|FAILED|ERROR" "$OUT/p.log" | head -4; tail -n 10 "$OUT/p.log"
(cd $T/NT3 && MLA_BACKEND_CACHE=/tmp/ext-NT3 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 python3 \
    timeline_narrow.py "$OUT/timeline-NT3.json" > "$OUT/timeline-NT3.log" 2>&1)
echo "timeline NT3 rc=$?"; grep -E "graph replay|last P.V|after trigger|row scales|stores issued|decode  end|dry|first landed|Q ready|combine end" "$OUT/timeline-NT3.log" | head -24
(cd $T/V158 && MLA_BACKEND_CACHE=/tmp/ext-V158 timeout -s KILL 150 python3 -m pytest -x -q -m gpu -p no:cacheprovider \
    tests/test_kernel_fp8_gpu.py -k "not sanitizer" > "$OUT/fp8-tests.log" 2>&1)
echo "fp8 tests rc=$?"; tail -n 2 "$OUT/fp8-tests.log"
B=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b32/s1024/h16/q1/varlen
BENCH_TIMEOUT=90 timeout -s KILL 300 bash benchmarks/bench_trees.sh "$OUT/bench" "$B" .peers \
    $T/main-nocheck:e2dbf01 $T/V158:9c66bca $T/main-nocheck:e2dbf01
cd "$OUT" && tar czf s51d.tgz p p.log pip.log bench timeline-* fp8-tests.log && rm -rf p p.log bench timeline-*.json
