#!/usr/bin/env bash
# s45e: landing v143 (86b9cc5 = b9d4c56 + v143): fp8 + scheduler GPU tests (memcheck included), issue 12's fp8 grid
# from its tree, and the folded rows sustained (power_probe, 3 s each, against FlashMLA fp8 in the same process).
# Predicted: tests pass (1190); h32 ~1.3% under b9d4c56's 100.6 µs in the same card state (s45d), 1.15-1.17x
# FlashMLA fp8; the rest +-2% of s45c's grid; sustained h32 1.06-1.09x (s44e 1.06x). Carry .variants/s45 and .peers.
# Argument: the landing commit.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
ROOT=$PWD
( cd $T/LAND && export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-LAND && mkdir -p "$OUT/g" &&
  timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
      tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
  echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/g/fp8_tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
  timeout -s KILL 200 python3 benchmarks/bench_decode.py --fp8-grid --peers $ROOT/.peers --card h200 --commit "$1" \
      --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
  echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | grep -E "^\| b|Targets"
  timeout -s KILL 90 python3 benchmarks/power_probe.py --peers $ROOT/.peers --kv fp8 --names mla_backend,flashmla_fp8 \
      --configs b128/s4096/h32/q1,b64/s2048/h16/q2 --seconds 3 > "$OUT/g/power.log" 2>&1; echo "power rc=$?"
  grep -E '^b[0-9]' "$OUT/g/power.log" )
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
