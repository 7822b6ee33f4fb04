#!/usr/bin/env bash
# s38d (diagnostic): where the 64-row fp8 kernel's block goes, per warpgroup: the branch exp-trace-wide-fp8's clock
# marks (kernels/mla_trace.cuh there), read by trace_wide_fp8.py. Run from the repository root with that branch
# checked out; carry .variants/s38/wheels.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 300 python3 benchmarks/results/logs/h200_s38/trace_wide_fp8.py "$OUT/marks.json" > "$OUT/trace.log" 2>&1
echo "trace rc=$?"; tail -n 16 "$OUT/trace.log"
