#!/usr/bin/env bash
# s55g: s51a's clock trace of the 16-bit 64-row kernel's block per role (h200_s50/patches/trace-wide-16bit.patch, read
# by h200_s50/trace_wide.py) on main after v170 (d7b1ed1), to see which phases v170's uniform code shortened.
# Setup here: mkdir -p .variants/s62/trees/TRACE && git archive HEAD mla_backend kernels tests pyproject.toml
#   benchmarks | tar -x -C .variants/s62/trees/TRACE && (cd .variants/s62/trees/TRACE && patch -p1 <
#   ../../../../benchmarks/results/logs/h200_s50/patches/trace-wide-16bit.patch); carry .variants/s62, .variants/s49.
# Predicted against s51a (v153, b132: 3,643 traced cycles a block): Q.K^T 1,425 -> ~1,300 (its descriptors no longer
# vector work), P.V0 issue 316 -> ~250, softmax, hand-over and landed wait as before; ~3,500 a block.
set -uo pipefail
T=.variants/s62/trees/TRACE
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
(cd $T && MLA_BACKEND_CACHE=/tmp/ext-trace PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 300 python3 \
    benchmarks/results/logs/h200_s50/trace_wide.py "$OUT/marks.json" > "$OUT/trace.log" 2>&1)
echo "trace rc=$?"; tail -n 30 "$OUT/trace.log"
