#!/usr/bin/env bash
# s45f: v144 (exp-v144-line-copies) against main (86b9cc5 + results) and a budget-only control, fp8 + scheduler tests
# (memcheck included) on V144, and, if V144 is >= 1% faster at b128/s4096/h32, issue 12's fp8 grid and the folded
# rows sustained from its tree (main then fast-forwards to it). ncu (s44g's folded CSV, `L1 Wavefronts Shared`):
# the producer's cp.async copies take 448 shared-memory wavefronts a block for an ideal 288, because a token row is
# 576 bytes and every other token's 128-byte pieces start 64 bytes into a global line. v144: the 64-row fp8 tile
# copies a page by 128-byte global lines (a pair of tokens is 9 lines; only line 4's chunks share banks): ~320
# wavefronts, 18 copies a thread instead of 20. Its 18 addresses needed producer registers: setmaxnreg 208 / 176 /
# 120 (was 208 / 184 / 112); BUDGET-nocheck is main with those budgets alone. 0 spills, no C75xx; narrow kernels
# unchanged. Predicted (s45c: the block's shared-memory instructions cost; wavefronts untested): folded h32
# -0.5..-2.5%, unfolded h64 / h128 0..-1.5%; BUDGET level. Carry .variants/s45 and .peers. Argument: V144's commit.
set -uo pipefail
T=.variants/s45/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s45/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
ROOT=$PWD
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=3 timeout -s KILL 200 bash benchmarks/probe_variants.sh \
    "$OUT/f" "$C8" $T/main-nocheck $T/V144 $T/BUDGET-nocheck > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 5 "$OUT/f.log"
ratio=$(grep '^b128/s4096/h32/q1' "$OUT/f.log" | tail -n 1 | grep -oE 'V144 +[0-9.]+ \([^)]*\) [0-9.]+x' | grep -oE '[0-9.]+x$' | tr -d x)
echo "V144 h32 ratio: ${ratio:-none}"
( cd $T/V144 && export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-V144 && mkdir -p "$OUT/g" &&
  timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
      tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
  echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/g/fp8_tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
  if [ -n "$ratio" ] && awk "BEGIN{exit !($ratio <= 0.99)}"; then
    timeout -s KILL 200 python3 benchmarks/bench_decode.py --fp8-grid --peers $ROOT/.peers --card h200 --commit "$1" \
        --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
    echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | grep -E "^\| b|Targets"
    timeout -s KILL 90 python3 benchmarks/power_probe.py --peers $ROOT/.peers --kv fp8 --names mla_backend,flashmla_fp8 \
        --configs b128/s4096/h32/q1,b64/s2048/h16/q2 --seconds 3 > "$OUT/g/power.log" 2>&1; echo "power rc=$?"
    grep -E '^b[0-9]' "$OUT/g/power.log"
  fi )
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
