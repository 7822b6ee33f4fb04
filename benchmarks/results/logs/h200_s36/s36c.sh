#!/usr/bin/env bash
# s36c: FP8_ROW_HALVES_MAX_BATCH 16 -> 64 (commit in the call log): the fp8 kernel tests (memcheck included) and the
# scheduler tests from the repository root, then issue 12's fp8 grid. Carry .peers and .variants (the cutlass wheel).
# Predicted (s35k, s36a): b64/s2048/h16/q2 46.6 -> ~44.0 us (0.95x -> ~1.0x FlashMLA fp8), every other grid row
# unchanged (b128 rows stay on the row split; the rest are 16 rows).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s36/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 240 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    tests/test_tile_scheduler.py > "$OUT/fp8_tests.log" 2>&1
echo "fp8 tests rc=$?"; tail -n 2 "$OUT/fp8_tests.log"; grep -c "SKIPPED" "$OUT/fp8_tests.log"
grep -E "^(FAILED|ERROR)" "$OUT/fp8_tests.log" | head
timeout -s KILL 300 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/r/*.md | head -30
