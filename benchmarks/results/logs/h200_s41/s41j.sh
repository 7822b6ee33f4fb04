#!/usr/bin/env bash
# s41j: the two bf16 grid rows v125 touches (17-63 query rows: the 64-row tile's padding rows now multiply zeros), in
# bench_decode.py with every bf16 peer checked in the same process, at 17b09be's kernels. Predicted: as the grid at
# 3e0025f within the lease's ~2% (h32 ~150 µs, 1.01x; q2 ~49, 1.05x): v125 was level in bursts (s41h).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-main
timeout 200 python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1
echo "build rc=$?"
timeout -s KILL 210 python3 benchmarks/bench_decode.py --configs b128/s4096/h32/q1,b64/s2048/h16/q2 --peers .peers \
    --card h200_padding_rows --commit 17b09be --out-dir "$OUT" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\| b" "$OUT/h200_padding_rows.md" | head -4
