#!/usr/bin/env bash
# s51b (prepared in the fiftieth session, not run): v155 at the power cap. v155 (patches/v155.patch: the softmax's
# second pass decided by P's per-thread sums, 49 fewer instructions a block on warpgroup 0's common path) measured
# level in s50d's bench, which is only partly power-capped; at b132 and the other 128-head rows a sustained step's
# time is its energy over ~692 W, so fewer instructions may show there. power_probe.py (3 s each, outputs checked),
# main and V155 alternating twice, b132/s8192/h128/q2 and b128/s4096/h128/q1.
# Predicted: V155 -0.5..-1.5% mJ a step (and µs) at b132, level at h128/q1 within the probe's ~0.5% noise.
# Setup here (no GPU needed):
#   rm -rf .variants/s51b && for t in main V155; do mkdir -p .variants/s51b/$t && git archive HEAD mla_backend \
#     kernels tests pyproject.toml benchmarks | tar -x -C .variants/s51b/$t; done && (cd .variants/s51b/V155 && \
#     patch -p1 < ../../../benchmarks/results/logs/h200_s50/patches/v155.patch)
#   the cutlass wheel in .variants/s49/wheels; carry .variants and .peers.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
for name in main V155 main V155; do
    (cd .variants/s51b/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 \
        python3 benchmarks/power_probe.py --peers ../../../.peers --names mla_backend \
        --configs b132/s8192/h128/q2,b128/s4096/h128/q1 --seconds 3 >> "$OUT/power_$name.log" 2>&1)
    echo "power $name rc=$?"; grep -E '^b[0-9]' "$OUT/power_$name.log" | tail -2
done
