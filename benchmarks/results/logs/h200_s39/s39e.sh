#!/usr/bin/env bash
# s39e: the commit to land (1de3d82: the folded 64-row fp8 tile for 17-32 rows, v113 + v113b), from the repository
# root: fp8 GPU tests (memcheck included) with the scheduler's, then issue 12's fp8 grid. The rows over 32 run the
# unfolded kernel, whose SASS is main's (compared here), so they are not re-run. Everything lands in $OUT/s39e.tgz.
# Carry .peers and .variants/s39/wheels. Predicted: tests pass; b128/s4096/h32 117.9 -> ~104.5 (1.09x FlashMLA fp8),
# b64/s2048/h16/q2 39.9 -> ~37.5 (1.18x); every other row as at 14a16d5 (16 rows and the memory-bound rows).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/g"
timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
echo "fp8 tests rc=$?"; tail -n 1 "$OUT/g/fp8_tests.log"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
timeout -s KILL 240 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | head -30
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
tar -czf "$OUT/s39e.tgz" -C "$OUT" g && rm -rf "$OUT/g"
