#!/usr/bin/env bash
# s43g: v134 against main (v133c). With the lazy max almost no block moves a row's max, yet each still exchanged its
# quads' maxima (two dependent SHFL.BFLY a row), folded them (an exp2 of 0) and voted again before O's rescale. v134
# (exp-v134-softmax-fast-path): each thread compares its own 16 scores a row with the running max + slack, one warp
# vote; if none exceeds, the exchange, the fold and the second vote are skipped (rescale 1). Same softmax bit for bit.
# Predicted: 128-head rows -0.5..-2% bursty; h64, h32 level. Then issue 9's grid on V134's tree (if time is left).
# Setup: bash benchmarks/variant_trees.sh .variants/s43/trees4 main:main-nocheck exp-v134-softmax-fast-path:V134;
# carry .variants/s43 and .peers. $1: V134's commit.
set -uo pipefail
T=.variants/s43/trees4 ROOT=$PWD
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1
TESTS=tests/test_kernel_gpu.py PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=45 ROUNDS=2 timeout -s KILL 200 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V134 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 8 "$OUT/p.log"
(cd $T/V134 && MLA_BACKEND_CACHE=/tmp/ext-V134 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 150 \
    python3 benchmarks/bench_decode.py --issue-grid --peers $ROOT/.peers --card h200 --commit "$1" --out-dir "$OUT/r" \
    > "$OUT/bench.log" 2>&1; echo "bench rc=$?"); sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
