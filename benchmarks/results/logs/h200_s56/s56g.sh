#!/usr/bin/env bash
# s56g: how long a KV group takes from its TMA issue to its landing in the 16-bit 64-row kernel, and how much slack the
# landing leaves warpgroup 0 (trace_loads.py). Tree: .variants/s56g/TRACE = b75476c's git archive (mla_backend,
# kernels, tests, pyproject.toml, benchmarks) + h200_s50/patches/trace-wide-16bit.patch + the role-3 observer
# (`patches/trace_loads_observer.patch`); carry .variants/s56g, .variants/s49.
set -uo pipefail
T=.variants/s56g/TRACE
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
(cd $T && MLA_BACKEND_CACHE=/tmp/ext-trace PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 300 python3 \
    benchmarks/results/logs/h200_s56/trace_loads.py "$OUT/marks.json" > "$OUT/trace.log" 2>&1)
echo "trace rc=$?"; tail -n 30 "$OUT/trace.log"
