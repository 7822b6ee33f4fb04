#!/usr/bin/env bash
# s35h: main with the fp8 column split for one request only (kFp8ColumnSplitMaxBatch 8 -> 1, commit in the call
# log): the fp8 kernel tests (memcheck included) from the repository root, then issue 12's fp8 grid again. Carry
# .peers and .variants (the cutlass wheel).
# Predicted (s35g): b8/s8192/h16 25.3 -> ~22.1 us (1.25x FlashMLA fp8: met), b4/s4096 15.6 -> ~15.3 (1.18x: missed
# by ~0.2), b1 unchanged (column split), every other row unchanged.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py tests/test_tile_scheduler.py \
    > "$OUT/fp8_tests.log" 2>&1
echo "fp8 tests rc=$?"; tail -n 2 "$OUT/fp8_tests.log"
timeout -s KILL 300 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/r/*.md | head -30
