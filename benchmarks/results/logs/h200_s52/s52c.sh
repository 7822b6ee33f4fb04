#!/usr/bin/env bash
# s52c: v162 (branch exp-v162-plan-prefetch): every decode kernel's thread 0 issues prefetch.global.L2 for its plan row
# first thing, before the mbarrier init and griddepcontrol.wait, so the plan load after the wait (the first of the two
# dependent loads before a part's first copy: plan row, then seqlen and page) finds the line in L2 or on its way.
# s51a's timeline: wait released 0.38 µs after the first CTA's entry, first page known 1.18 (two loads, 0.8 µs).
# Predicted: small batches -0.1..-0.3 µs (b8/s8192/h16 29.1 -> 28.8-29.0, b4, b1, b32 alike; fp8 small rows alike),
# the 64-row kernel's rows level (its SASS moved around: 168 registers as main), b128/h16 level.
# Trees: bash benchmarks/variant_trees.sh .variants/s52/trees main:main-nocheck exp-v162-plan-prefetch:V162
# Carry .variants, .peers (the cutlass wheel in .variants/s49/wheels).
set -uo pipefail
T=.variants/s52/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
(cd $T/V162 && MLA_BACKEND_CACHE=/tmp/ext-V162 timeout -s KILL 200 python3 -m pytest -x -q -m gpu -p no:cacheprovider \
    tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1)
echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -5
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b1/s32768/h128/q1,b16/s4096/h128/q1,b128/s4096/h16/q1,b128/s4096/h128/q1
PROBE_TIMEOUT=90 TESTS=none ROUNDS=3 timeout -s KILL 200 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V162 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 10 "$OUT/p.log"
F=b8/s8192/h16/q1,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1
PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=90 TESTS=none ROUNDS=2 timeout -s KILL 120 bash benchmarks/probe_variants.sh "$OUT/f" "$F" \
    $T/main-nocheck $T/V162 > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; tail -n 4 "$OUT/f.log"
cd "$OUT" && tar czf s52c.tgz p f p.log f.log pip.log && rm -rf p f
