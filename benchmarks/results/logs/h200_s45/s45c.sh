#!/usr/bin/env bash
# s45c: (1) why v141 / v141b lost (+4.7..+4.8% at h32 wherever warpgroup 1's transpose sat), two diagnostic copies
# against main (65d5076) and V141B, outputs unchecked: D1 = main's split of work (the producer transposes all 512
# columns, warpgroup 1 as main) but with the half-tile transposer (4-byte loads in two passes, 2.5x the MIO
# instructions of main's 16-byte loads and stores) run for both halves; D3 = V141B with warpgroup 1's transpose
# knocked out (the producer's half only; outputs wrong). Predicted: if the half-tile transposer's MIO instructions
# are the cost, D1 ~ +3..+5% and D3 below main; if warpgroup 1's part is, D1 level and D3 ~ V141B - the gain.
# (2) landing v142 (b9d4c56): fp8 + scheduler GPU tests (memcheck included) and issue 12's fp8 grid from its tree
# (the first grid with v140). Predicted: tests pass; h32 ~97-99 µs, 1.15-1.17x FlashMLA fp8; the rest +-2% of
# 670ca07's grid. Carry .variants/s45 and .peers. Argument: the landing commit.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
ROOT=$PWD
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=40 ROUNDS=2 timeout -s KILL 200 bash benchmarks/probe_variants.sh \
    "$OUT/f" "$C8" $T/main-nocheck $T/D1-nocheck $T/D3-nocheck $T/V141B-nocheck > "$OUT/f.log" 2>&1
echo "diag probe rc=$?"; grep -E "build|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 3 "$OUT/f.log"
( cd $T/LAND && export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-LAND && mkdir -p "$OUT/g" &&
  timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
      tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
  echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/g/fp8_tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
  timeout -s KILL 200 python3 benchmarks/bench_decode.py --fp8-grid --peers $ROOT/.peers --card h200 --commit "$1" \
      --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
  echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | grep -E "^\| b|Targets" )
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
