#!/usr/bin/env bash
# s26b: the kernel alone on the serving benchmark's decode shapes (128 heads), HEAD against every peer, one process.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b1/s4096/h128/q1,b16/s4096/h128/q1,b64/s4096/h128/q1,b1/s16384/h128/q1,b16/s16384/h128/q1,b1/s32768/h128/q1
timeout -s KILL 560 python benchmarks/bench_decode.py --configs $C --peers .peers --card h200_serving_shapes \
    --commit "$(git rev-parse --short HEAD)" --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
