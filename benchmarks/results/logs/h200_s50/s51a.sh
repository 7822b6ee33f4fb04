#!/usr/bin/env bash
# s51a (prepared in the fiftieth session, not run): where a block of the 16-bit 64-row kernel (v153) goes, per role:
# clock marks of tile 0 / part 0's CTA (patches/trace-wide-16bit.patch: kernels/mla_trace.cuh, marks in
# process_block_warpgroup0/1 and the TMA producer, mla_trace_copy for ctypes) at b132/s8192/h128/q2 and
# b128/s4096/h128 q1 and q2, read by trace_wide.py (the patch adds it to the tree). The question (PERF_NOTES, fiftieth session): of the ~860 cycles a
# block beyond the tensor pipe's 2,176, how many are Q.K^T's wait beyond its 1,152 (shared memory shared with the TMA
# writes and warpgroup 1's P.V), the softmax, the hand-over, P.V0's wait, or the landed wait.
# Predicted (shares of a traced block, the marks slow it): Q.K^T 40-45%, softmax 12-15%, P.V0 wait 25-30%, landed
# wait under 5%, the rest barriers and hand-over.
# Setup here (no GPU needed):
#   rm -rf .variants/s51 && mkdir -p .variants/s51/trees/TRACE && git archive HEAD mla_backend kernels tests \
#     pyproject.toml benchmarks | tar -x -C .variants/s51/trees/TRACE && (cd .variants/s51/trees/TRACE && \
#     patch -p1 < ../../../../benchmarks/results/logs/h200_s50/patches/trace-wide-16bit.patch)
#   the cutlass wheel in .variants/s49/wheels (pip download --no-deps nvidia-cutlass==4.2.0.0); carry .variants.
set -uo pipefail
T=.variants/s51/trees/TRACE
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
(cd $T && MLA_BACKEND_CACHE=/tmp/ext-trace PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 300 python3 \
    benchmarks/results/logs/h200_s50/trace_wide.py "$OUT/marks.json" > "$OUT/trace.log" 2>&1)
echo "trace rc=$?"; tail -n 16 "$OUT/trace.log"
