#!/usr/bin/env bash
# s42e: issue 9's bf16 grid on main (bench_decode --issue-grid, every vLLM 0.26 peer and FlashInfer's MLA wrapper), the
# first since v125 (17b09be) changed the 64-row kernel for 17-63 rows. Carry .peers and .variants/s42/wheels.
# Predicted: as 3e0025f's grid within noise (v125 was level in bursts): 16 of 17 rows >= 1.00x, b132/s8192/h128/q2
# 0.97-1.01x (an energy race at the cap), geomean ~1.14x.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s42/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 540 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
