#!/usr/bin/env bash
# s51f: v160b (exp-v160b-combine-whole-rows-few-splits, 22be94c): s51e's v160 (whole-row combine CTAs from 128 rows)
# took 1% off b8/s8192/h16 in the probe and the bench, but the 1-2% that column slices gained at 16-128 rows with 64-132
# splits (v83a) would be lost at b1/b2; v160b takes whole rows from 128 rows only when requests have < 32 splits
# (b >= 5 on 132 parts). Tests (both kernel files: the combine is shared) and a probe (two rounds); no bench: two
# failed starts left ~5 device minutes.
# Predicted: b8 x 16 rows -0.2..-0.4 us (b8/s8192/h16 29.4 -> ~29.1), b6/h32 level..-1%, b1 and b4 rows unchanged.
set -uo pipefail
T=.variants/s51/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
(cd $T/V160B && MLA_BACKEND_CACHE=/tmp/ext-V160B timeout -s KILL 100 python3 -m pytest -x -q -m gpu -p no:cacheprovider \
    tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1)
echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b8/s4096/h16/q1,b6/s8192/h32/q1,b1/s32768/h128/q1
PROBE_TIMEOUT=60 TESTS=none ROUNDS=2 timeout -s KILL 130 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V160B > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 8 "$OUT/p.log"
cd "$OUT" && tar czf s51f.tgz p p.log pip.log tests.log && rm -rf p p.log
