#!/usr/bin/env bash
# s51e: v159 (exp-v159-epilogue-under-last-pv, aec2d65): s51c's marks put row_scales (~0.23 us) and the LSE stores
# (~0.15-0.2 us) on a narrow part's critical path after its last P.V; v159 runs them while the piece's last products
# are in flight (the wgmma wait stays outside the branch: C7518 otherwise). v160 (exp-v160-combine-whole-rows-128,
# c1fc73c): the combine's whole-row CTAs from 128 rows instead of 256 (b8 x 16 rows: 128 CTAs of 8 warps a row instead
# of 512 of a 128-column slice; s51a: the merge ends 1.1-2.5 us after its wait).
# Predicted: v159 -0.2..-0.4 us on every small batch (b4 15.6 -> ~15.3, b8 29.5 -> ~29.2); v160 b8 -0.3..+0.3 us
# (only rows with 128-255 merged rows change).
set -uo pipefail
T=.variants/s51/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b32/s1024/h16/q1/varlen,b128/s4096/h16/q1,b64/s2048/h8/q2,b8/s4096/h16/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V159 $T/V160-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "passed|failed|tests rc|FAILED|ERROR" "$OUT/p.log" | head -4; tail -n 10 "$OUT/p.log"
(cd $T/V159 && MLA_BACKEND_CACHE=/tmp/ext-V159 timeout -s KILL 170 python3 -m pytest -x -q -m gpu -p no:cacheprovider \
    tests/test_kernel_gpu.py -k sanitizer > "$OUT/memcheck.log" 2>&1)
echo "memcheck rc=$?"; tail -n 2 "$OUT/memcheck.log"
B=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b32/s1024/h16/q1/varlen
BENCH_TIMEOUT=90 timeout -s KILL 400 bash benchmarks/bench_trees.sh "$OUT/bench" "$B" .peers \
    $T/main-nocheck:e2dbf01 $T/V159:aec2d65 $T/V160-nocheck:c1fc73c $T/main-nocheck:e2dbf01 | grep -E "^bench|^\| b[0-9/a-z]* \| [0-9]* \|"
cd "$OUT" && tar czf s51e.tgz p p.log pip.log bench memcheck.log && rm -rf p p.log bench
