#!/usr/bin/env bash
# s34j (diagnostic): where a small-batch fp8 column-split CTA spends its time: the branch exp-trace-column-split's
# clock marks (kernels/mla_trace.cuh there), read by trace_column_split.py. Run from the repository root with that
# branch checked out; carry .variants/s34 (the cutlass wheel).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 300 python3 benchmarks/results/logs/h200_s34/trace_column_split.py > "$OUT/trace.log" 2>&1
echo "trace rc=$?"; cat "$OUT/trace.log" | tail -n 30
