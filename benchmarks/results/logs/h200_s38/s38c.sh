#!/usr/bin/env bash
# s38c: the commit to land (v108 + v108q), from the repository root: fp8 GPU tests (memcheck included) with the
# scheduler's; issue 12's fp8 grid; the rows over 32 against FlashMLA fp8. Everything lands in $OUT/s38c.tgz.
# Predicted: tests pass; grid: b128/s4096/h32 124.9 -> ~121 (0.95x FlashMLA fp8), b64/s2048/h16/q2 41.0 -> ~40
# (1.11x), b4/s4096 1.19x -> ~1.21x; rows over 32: h128 0.90x -> ~0.95x, h64 0.93x -> ~0.96x.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/g"
timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
echo "fp8 tests rc=$?"; tail -n 1 "$OUT/g/fp8_tests.log"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
timeout -s KILL 240 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | head -30
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b64/s4096/h64/q2
timeout -s KILL 150 python3 benchmarks/bench_decode.py --configs $B --kv fp8 --peers .peers \
    --card h200_rows_over_32 --commit "$1" --out-dir "$OUT/g/r" > "$OUT/g/bench_rows_over_32.log" 2>&1
echo "rows over 32 rc=$?"; grep -E "^b|mla_backend |flashmla_fp8 |geomean" "$OUT/g/bench_rows_over_32.log"
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
tar -czf "$OUT/s38c.tgz" -C "$OUT" g && rm -rf "$OUT/g"
